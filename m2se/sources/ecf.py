"""ECF 2.0 (SemEval-2024 Task 3, subtask 2 JSON) → ecpe records.

python -m m2se.sources ecf Subtask_2_test.json --out ecf_test.json --media-prefix ECF2/subtask2_test/
python -m m2se.sources ecf Subtask_2_train.json --end-to-end --out ecf_e2e_train.json
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from m2se.files import json_problem
from m2se.sources.common import BuildResult, InputError, Inputs, input_paths, progress, read_json
from m2se.tasks import ECPE_EMOTIONS
from m2se.templates import ECPE_HEAD, ECPE_TAIL, Utterance, ecpe_query

E2E_HEAD = (
    ECPE_HEAD.split("\n")[0]
    + "\n"
    + (
        "Your task is to name the emotion of the target utterance (anger, disgust, fear, joy, sadness or surprise) "
        "and identify the indices of the candidate utterances that elicited it.\n"
    )
)
E2E_NOTE = (
    "If the target utterance is neutral or nothing in the conversation caused its emotion, answer nothing.\n"
)
_TARGET = re.compile(r"(\d+)_([a-z]+)")
_CAUSE = re.compile(r"(\d+)")


def e2e_query(conversation: Sequence[Utterance], target: int) -> str:
    """The end-to-end query for the 1-based ``target`` utterance: no emotion labels in the prompt."""
    lines = [f"{i}. {u.speaker}: {u.text}" for i, u in enumerate(conversation, start=1)]
    return (
        f"{E2E_HEAD}Input conversation:"
        + "\n".join(lines)
        + "\nCandidate utterances:"
        + "\n".join(lines[: target - 1])
        + f"\nTarget utterance:{lines[target - 1]}\n{E2E_NOTE}{ECPE_TAIL}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="prompts without emotion labels; every utterance is a target",
    )


def parse_pairs(raw: object, size: int) -> dict[int, list[str]]:
    """``[["3_surprise", "1"], ...]`` → {3: ["3_surprise,1", ...]} in the JSON's order; ValueError if malformed."""
    pairs: dict[int, list[str]] = {}
    if not isinstance(raw, list | None):
        raise ValueError(f"emotion-cause_pairs must be a list, got {type(raw).__name__}")
    for pair in raw or []:
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise ValueError(f"malformed emotion-cause pair {pair!r}")
        target, cause = _TARGET.fullmatch(str(pair[0]).strip()), _CAUSE.match(str(pair[1]).strip())
        if target is None or cause is None or target[2] not in ECPE_EMOTIONS:
            raise ValueError(f"malformed emotion-cause pair {pair!r} (expected like ['3_surprise', '1'])")
        t, c = int(target[1]), int(cause[1])
        if not (1 <= t <= size and 1 <= c <= size):
            raise ValueError(f"emotion-cause pair {pair!r} points outside the {size} utterances")
        pairs.setdefault(t, []).append(f"{t}_{target[2]},{c}")
    return pairs


def conversation_of(item: object) -> tuple[list[Utterance], list[str], dict[int, list[str]]]:
    """Utterances, their clip names and pairs by target; ValueError when the item cannot be read."""
    if not isinstance(item, dict) or not isinstance(item.get("conversation"), list):
        raise ValueError("expected an object with a 'conversation' list")
    utterances, clips = [], []
    for i, u in enumerate(item["conversation"], start=1):
        missing = [k for k in ("text", "speaker", "emotion") if not isinstance(u, dict) or k not in u]
        if missing:
            raise ValueError(f"utterance {i} lacks {', '.join(missing)}")
        if u["emotion"] not in ECPE_EMOTIONS:
            raise LookupError(
                f"utterance {i}: unknown emotion {u['emotion']!r} (expected one of {', '.join(ECPE_EMOTIONS)})"
            )
        clip = u.get("video_name") or ""
        fields = {"text": u["text"], "speaker": u["speaker"], "video_name": clip}
        wrong = [k for k, value in fields.items() if not isinstance(value, str)]
        if wrong:
            raise ValueError(f"utterance {i}: {', '.join(wrong)} must be text")
        utterances.append(Utterance(u["speaker"], u["text"], u["emotion"]))
        clips.append(clip)
    return utterances, clips, parse_pairs(item.get("emotion-cause_pairs"), len(utterances))


def build_ecf(
    inputs: Inputs,
    *,
    end_to_end: bool = False,
    media_prefix: str = "",
    media_root: str | Path | None = None,
) -> BuildResult:
    """ecpe records from ECF 2.0 JSON files (SemEval-2024 Task 3, subtask 2).

    Each file is a list of conversations ``{conversation_ID, conversation: [{utterance_ID, text, speaker,
    emotion, video_name}], emotion-cause_pairs: [["3_surprise", "1"], ...]}``.

    Default ("emotions given", as EmoVerse): one record per non-neutral utterance, the released query
    (``templates.ecpe_query``), the answer its pairs ``t_emotion,c`` joined by ``;`` in the order the
    JSON lists them (the released file keeps that order, unsorted), empty when it has none; the video is
    ``media_prefix`` + the target utterance's ``video_name``. These rules reproduce all 1,821 released
    test records.

    ``end_to_end`` (m2se's own variant; EmoVerse has none): the prompt gives no emotions and every
    utterance, neutral ones included, is a target, so the model must name the emotion as well as the
    causes. Lines read ``{i}. {Speaker}: {text}``; the query is ``E2E_HEAD`` + ``Input conversation:`` +
    all lines + ``\\nCandidate utterances:`` + lines 1..t-1 + ``\\nTarget utterance:`` + line t + ``\\n``
    + ``E2E_NOTE`` + the released tail (``templates.ECPE_TAIL``). The answer has the same form; empty for
    a neutral target or one with no cause.

    Returns the records; a conversation that cannot be read (unknown emotion, malformed pair, a field of
    the wrong type) is one counted skip, and so is a target without a ``video_name`` or, with
    ``media_root``, without its clip there. Raises ``InputError`` when a file cannot be read or is not a
    JSON list.
    """
    result = BuildResult(media_prefix=media_prefix, media_root=media_root)
    for path in input_paths(inputs):
        items = read_json(path)
        if not isinstance(items, list):
            raise InputError(f"{path}: expected a JSON list of conversations")
        for index, item in enumerate(progress(items, path.name)):
            where = f"{path.name}:{index}"
            problem = json_problem(item, "conversation")
            if problem:
                result.skip(where, f"unusable value: {problem}", "bad value")
                continue
            name = item.get("conversation_ID", "?") if isinstance(item, dict) else "?"
            try:
                utterances, clips, pairs = conversation_of(item)
            except LookupError as err:
                result.skip(where, f"conversation {name}: {err}", "unknown label")
                continue
            except ValueError as err:
                result.skip(where, f"conversation {name}: {err}", "broken conversation")
                continue
            for t, utterance in enumerate(utterances, start=1):
                if utterance.emotion == "neutral" and not end_to_end:
                    continue
                if not clips[t - 1]:
                    result.skip(
                        where, f"conversation {name}: utterance {t} has no video_name", "missing media"
                    )
                    continue
                query = e2e_query(utterances, t) if end_to_end else ecpe_query(utterances, t)
                result.add(where, query, ";".join(pairs.get(t, [])), "videos", clips[t - 1])
    return result

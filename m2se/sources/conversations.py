"""Dialogue corpora → turns per dialogue, for the ``dialogue`` builder (MELD CSV, EmoryNLP JSON, JSONL).

Unusable rows (unknown label, missing text or emotion, non-integer ids, a field of the wrong type, broken JSON
line, a value JSON cannot carry, a turn seen twice) are counted skips ``file:row: reason``; rows are CSV lines, JSONL lines, or ``episodes[e].scenes[s]
.utterances[u]`` for EmoryNLP. Emotions match the dataset's native labels in any case and are stored in
their native spelling; ``labels=None`` (a dataset m2se does not know) accepts any non-empty emotion.
Tabs and newlines in utterances become spaces: they separate the pieces of InstructERC's prompts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from m2se.dialogue.prompts import Turn
from m2se.files import json_problem
from m2se.sources.common import (
    BuildResult,
    InputError,
    parse_json,
    progress,
    read_json,
    read_text,
    table_rows,
    whole_number,
)

MELD_COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")
MELD_NAMES = {"joy": "joyful", "sadness": "sad", "anger": "angry"}  # MELD's spelling → InstructERC's
UNKNOWN_SPEAKER = "Unknown"
Labels = Sequence[str] | None
# (input index, dialogue id) → (where, turn): the same id in two inputs is two dialogues.
Dialogues = dict[tuple[int, str], list[tuple[str, Turn]]]


def _clean(text: str) -> str:
    return re.sub(r"[\t\r\n]", " ", text).strip()


def _keep(dialogues: Dialogues, index: int, where: str, turn: Turn, labels: Labels, result: BuildResult):
    """Add one turn to its dialogue, or count why it cannot be used."""
    by_case = {label.lower(): label for label in labels or ()}
    if not turn.text:
        return result.skip(where, "missing text", "missing text")
    if not turn.emotion:
        return result.skip(where, "missing emotion", "missing emotion")
    if labels is not None and turn.emotion.lower() not in by_case:
        message = f"unknown label {turn.emotion!r} (expected one of {', '.join(labels)})"
        return result.skip(where, message, "unknown label")
    turns = dialogues.setdefault((index, turn.dialogue_id), [])
    if any(t.turn == turn.turn for _, t in turns):
        return result.skip(
            where, f"turn {turn.turn} of dialogue {turn.dialogue_id} seen twice", "duplicate turn"
        )
    emotion = by_case.get(turn.emotion.lower(), turn.emotion)
    turns.append((where, Turn(turn.dialogue_id, turn.turn, turn.speaker, turn.text, emotion)))


def read_meld(path: Path, index: int, labels: Labels, dialogues: Dialogues, result: BuildResult) -> None:
    for where, row in table_rows(path, MELD_COLUMNS, result):
        dialogue, utterance = whole_number(row["Dialogue_ID"]), whole_number(row["Utterance_ID"])
        if dialogue is None or utterance is None:
            ids = f"{row['Dialogue_ID'].strip()!r}/{row['Utterance_ID'].strip()!r}"
            result.skip(where, f"bad Dialogue_ID/Utterance_ID {ids}", "broken row")
            continue
        emotion = row["Emotion"].strip().lower()
        speaker = row["Speaker"].strip() or UNKNOWN_SPEAKER
        text, emotion = _clean(row["Utterance"]), MELD_NAMES.get(emotion, emotion)
        _keep(
            dialogues,
            index,
            where,
            Turn(str(dialogue), utterance, speaker, text, emotion),
            labels,
            result,
        )


def _list(item: object, key: str) -> list:
    value = item.get(key) if isinstance(item, dict) else None
    return value if isinstance(value, list) else []


def _name(value: object) -> str | None:
    """A speaker or emotion field as text: a string, or an integer (speaker ids); None for anything else
    (a list, an object, a float), which would reach the prompt as Python's repr of it."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _unusable(item: object, name: str) -> str | None:
    """Why a parsed JSON item cannot be read, or None (see ``json_problem``)."""
    problem = json_problem(item, name)
    return f"unusable value: {problem}" if problem else None


def read_emorynlp(path: Path, index: int, labels: Labels, dialogues: Dialogues, result: BuildResult) -> None:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("episodes"), list):
        raise InputError(f'{path}: not an EmoryNLP release (expected {{"episodes": [...]}})')
    scenes = [(e, s, sc) for e, ep in enumerate(data["episodes"]) for s, sc in enumerate(_list(ep, "scenes"))]
    for e, s, scene in progress(scenes, path.name):
        at = f"{path.name}:episodes[{e}].scenes[{s}]"
        scene_id = scene.get("scene_id") if isinstance(scene, dict) else None
        if not isinstance(scene_id, str) or not scene_id:
            result.skip(at, "scene without a scene_id", "broken row")
            continue
        for u, item in enumerate(_list(scene, "utterances")):
            where = f"{at}.utterances[{u}]"
            problem = _unusable(scene_id, "scene_id") or _unusable(item, "utterance")
            if problem:
                result.skip(where, problem, "bad value")
                continue
            transcript = item.get("transcript") if isinstance(item, dict) else None
            if not isinstance(transcript, str):
                result.skip(where, "utterance without a transcript", "missing text")
                continue
            speakers = item.get("speakers") or [UNKNOWN_SPEAKER]
            speaker = _name(speakers[0]) if isinstance(speakers, list) else None
            emotion = _name(item.get("emotion") or "")
            if speaker is None or emotion is None:
                result.skip(where, "speakers must be a list of names and emotion a string", "broken row")
                continue
            turn = Turn(scene_id, u, speaker, _clean(transcript), emotion)
            _keep(dialogues, index, where, turn, labels, result)


def read_jsonl(path: Path, index: int, labels: Labels, dialogues: Dialogues, result: BuildResult) -> None:
    for number, line in enumerate(progress(read_text(path).splitlines(), path.name), start=1):
        where = f"{path.name}:{number}"
        if not line.strip():
            continue
        try:
            item = parse_json(line)
        except ValueError as err:
            result.skip(where, f"bad JSON line ({err})", "broken row")
            continue
        problem = _unusable(item, "line")
        if problem:
            result.skip(where, problem, "bad value")
            continue
        item = item if isinstance(item, dict) else {}
        dialogue, turn, text = item.get("dialogue_id"), item.get("turn"), item.get("text")
        speaker, emotion = _name(item.get("speaker") or UNKNOWN_SPEAKER), _name(item.get("emotion") or "")
        if _name(dialogue) is None or dialogue == "":
            result.skip(where, f"dialogue_id must be a string or an integer, got {dialogue!r}", "broken row")
        elif isinstance(turn, bool) or not isinstance(turn, int):
            result.skip(where, f"turn must be an integer, got {turn!r}", "broken row")
        elif speaker is None or emotion is None:
            result.skip(where, "speaker and emotion must be strings", "broken row")
        else:
            text = _clean(text) if isinstance(text, str) else ""
            _keep(dialogues, index, where, Turn(str(dialogue), turn, speaker, text, emotion), labels, result)


READERS = {"meld": read_meld, "emorynlp": read_emorynlp, "jsonl": read_jsonl}


def read_dialogues(paths: Sequence[Path], fmt: str, labels: Labels, result: BuildResult) -> Dialogues:
    """Every usable turn of ``paths`` (all in format ``fmt``), per dialogue, in turn order."""
    dialogues: Dialogues = {}
    for index, path in enumerate(paths):
        READERS[fmt](Path(path), index, labels, dialogues, result)
    return {
        key: sorted(turns, key=lambda located: located[1].turn) for key, turns in dialogues.items() if turns
    }

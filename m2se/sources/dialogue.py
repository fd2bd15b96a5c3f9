"""Dialogues → conversation-level ERC records the InstructERC way (erc_dialog, speaker_id, emotion_predict).

    python -m m2se.sources dialogue train_sent_emo.csv --format meld --out meld_dialog_train.json \\
        --aux speaker,predict --demos 4 --demo-pool train_sent_emo.csv
    python -m m2se.sources dialogue test_sent_emo.csv --format meld --out meld_dialog_test.json \\
        --demos 4 --demo-pool train_sent_emo.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from m2se.dialogue import prompts
from m2se.dialogue.labels import NATIVE, UNIFIED, speaker_slots, to_unified, unified_labels
from m2se.dialogue.retrieval import DemoRetriever
from m2se.sources.common import BuildResult, InputError, Inputs, check_choice, input_paths, progress
from m2se.sources.conversations import Dialogues, read_dialogues

FORMATS = ("meld", "emorynlp", "jsonl")
TEMPLATES = ("instructerc", "emoverse")
AUX = ("speaker", "predict")
LABEL_SPACES = ("native", "unified")
SPEAKER_NAMES = ("slot", "real")
EVAL_SPLITS = {"test", "tst", "dev", "val", "valid", "validation", "eval", "evaluation"}


def _aux(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if any(n not in AUX for n in names):
        raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(AUX)}, got {value!r}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--format", choices=FORMATS, required=True, help="how INPUT is written")
    add(
        "--dataset",
        help="corpus: meld, emorynlp, iemocap or another (default: from --format; jsonl: required)",
    )
    add("--template", choices=TEMPLATES, help="erc_dialog prompt (default: instructerc)")
    add("--window", type=int, help="previous utterances in the context (default: 12)")
    add("--aux", type=_aux, metavar="speaker,predict", help="add auxiliary records (training)")
    add("--labels", choices=LABEL_SPACES, help="label space (default: native)")
    add("--speaker-names", choices=SPEAKER_NAMES, help="Speaker_k (default) or real names")
    add("--demos", type=int, metavar="K", help="retrieved demonstrations per erc_dialog record")
    add("--demo-pool", type=Path, metavar="FILE", help="where demonstrations come from: the training split")
    add("--embedding-model", help="sentence-transformers folder or hub id (default: all-MiniLM-L6-v2)")


@dataclasses.dataclass(frozen=True)
class _Options:
    """``build_dialogue``'s arguments, passed whole to its helpers."""

    inputs: list[Path]
    format: str
    dataset: str | None
    template: str
    window: int
    aux: tuple[str, ...]
    labels: str
    speaker_names: str
    demos: int
    demo_pool: Path | None
    embedding_model: str | None


def _evaluation_split(path: Path) -> bool:
    return bool(EVAL_SPLITS & set(re.split(r"[^a-z0-9]+", path.stem.lower())))


def _check(options: _Options, with_media: bool) -> str:
    """The dataset name, after refusing option combinations that cannot be built."""
    check_choice("format", options.format, FORMATS)
    check_choice("template", options.template, TEMPLATES)
    check_choice("labels", options.labels, LABEL_SPACES)
    check_choice("speaker_names", options.speaker_names, SPEAKER_NAMES)
    for name in options.aux:
        check_choice("aux", name, AUX)
    dataset = options.dataset or {"meld": "meld", "emorynlp": "emorynlp"}.get(options.format)
    if dataset is None:
        raise InputError("--format jsonl needs --dataset NAME (meld, emorynlp, iemocap or another)")
    if options.labels == "unified" and dataset not in UNIFIED:
        raise InputError(f"--labels unified: no unified labels for {dataset!r} (known: {', '.join(UNIFIED)})")
    if with_media and options.format != "meld":
        raise InputError(f"--media-prefix/--media-root: --format {options.format} has no clips (meld only)")
    if options.window < 0 or options.demos < 0:
        raise InputError("--window and --demos must be >= 0")
    if bool(options.demos) != bool(options.demo_pool):
        raise InputError("--demos K and --demo-pool FILE go together")
    if options.demos and options.template != "instructerc":
        raise InputError("--demos: only --template instructerc has a slot for demonstrations")
    return dataset


def _turns(dialogues: Dialogues, index: int | None = None) -> list[prompts.Turn]:
    return [t for (i, _), located in dialogues.items() if index in (None, i) for _, t in located]


def _demos(options: _Options, dialogues: Dialogues, relabel) -> list[str]:
    """``format_demos`` text for each turn of ``dialogues``, in their order."""
    pool_path: Path = options.demo_pool
    if _evaluation_split(pool_path):
        raise InputError(f"{pool_path}: named like an evaluation split; the demonstration pool must be train")
    same = [i for i, p in enumerate(options.inputs) if Path(p).resolve() == pool_path.resolve()]
    if same:
        pool = _turns(dialogues, same[0])
    else:
        pool_dialogues = read_dialogues(
            [pool_path], options.format, NATIVE.get(options.dataset), BuildResult()
        )
        pool = _turns(pool_dialogues)
        for index, path in enumerate(options.inputs):
            held = {
                (d, tuple(t.text for _, t in located)) for (i, d), located in dialogues.items() if i == index
            }
            shared = held & {(d, tuple(t.text for _, t in x)) for (_, d), x in pool_dialogues.items()}
            if shared and _evaluation_split(Path(path)):
                raise InputError(
                    f"{pool_path}: holds dialogue {min(shared)[0]} of {path} (an evaluation split)"
                )
    if not pool:
        raise InputError(f"{pool_path}: no usable utterance to retrieve demonstrations from")
    queries = _turns(dialogues)
    try:
        retriever = DemoRetriever(options.embedding_model)
        found = retriever.nearest(
            [q.text for q in queries],
            [q.dialogue_id for q in queries],
            [p.text for p in pool],
            [p.dialogue_id for p in pool],
            options.demos,
        )
    except (ValueError, OSError) as err:  # no model, a model that does not load
        raise InputError(f"{options.embedding_model or 'embedding model'}: {err}".splitlines()[0]) from None
    return [prompts.format_demos([(pool[i].text, relabel(pool[i].emotion)) for i in row]) for row in found]


def _turn_records(
    options: _Options, turns: list[prompts.Turn], t: int, labels: list[str], relabel, demo: str
) -> list[tuple[str, str, bool, list[str]]]:
    """(query, response, carries the clip, offered labels) of turn ``t``: erc_dialog, then --aux ones."""
    window, names, answer = options.window, options.speaker_names, relabel(turns[t].emotion)
    if options.template == "emoverse":
        query, response = (
            prompts.emoverse_query(turns, t, labels, window, names),
            prompts.emoverse_answer(answer),
        )
    else:
        query, response = prompts.erc_query(turns, t, labels, window, names, demo), answer
    records = [(query, response, True, labels)]
    slot, offered = prompts.slots(turns)[t], speaker_slots(options.dataset)
    if "speaker" in options.aux and slot < offered:
        speakers = [f"Speaker_{k}" for k in range(offered)]
        records.append(
            (prompts.speaker_query(turns[t].text, options.dataset), f"Speaker_{slot}", True, speakers)
        )
    if "predict" in options.aux and t > 0:
        records.append((prompts.predict_query(turns, t, labels, window, names), answer, False, labels))
    return records


def build_dialogue(
    inputs: Inputs,
    *,
    format: Literal["meld", "emorynlp", "jsonl"],
    dataset: str | None = None,
    template: Literal["instructerc", "emoverse"] = "instructerc",
    window: int = 12,
    aux: Sequence[Literal["speaker", "predict"]] = (),
    labels: Literal["native", "unified"] = "native",
    speaker_names: Literal["slot", "real"] = "slot",
    demos: int = 0,
    demo_pool: str | Path | None = None,
    embedding_model: str | None = None,
    media_prefix: str = "",
    media_root: str | Path | None = None,
) -> BuildResult:
    """erc_dialog records (and InstructERC's auxiliary ones) from dialogue corpora, one per utterance.

    Formats (``format``): meld (the official CSVs; joy, sadness, anger become InstructERC's joyful, sad,
    angry), emorynlp (the JSON release; a scene is a dialogue, its speaker the first of "speakers"),
    jsonl (one ``{"dialogue_id", "turn", "speaker", "text", "emotion"}`` per line, turns ordered by
    "turn"). ``dataset`` names the corpus (meld, emorynlp, iemocap or another; by default the format's,
    which jsonl has none of). Emotions must be the dataset's native labels; for a dataset m2se does not
    know, the labels are the sorted set of emotions seen.

    ``template="instructerc"`` writes InstructERC's prompts character for character with ``window``
    previous utterances; ``"emoverse"`` an EmoVerse-style query after the context lines. ``aux`` adds
    InstructERC's training-only auxiliary records ("speaker": speaker_id; "predict": emotion_predict,
    from the second utterance of a dialogue on) whatever the template. ``labels="unified"`` answers in
    InstructERC's nine unified labels; ``speaker_names="real"`` keeps names instead of ``Speaker_k``.

    Each record holds query, response and: dataset, dialogue_id, turn, labels (the prompt's label
    list), label_space (native or unified) and native (the turn's gold native emotion). Records are
    text-only unless ``media_prefix`` or ``media_root`` is given (meld only): then erc_dialog and
    speaker_id records carry the utterance's clip ``dia{D}_utt{U}.mp4`` (emotion_predict never does: its
    answer is that clip's emotion). Records that read alike in different dialogues ("Hi." opening two
    scenes) are all kept: a record's identity includes its dataset, dialogue and turn.

    Demonstrations (``demos`` K, instructerc template only) are the K utterances of ``demo_pool`` (same
    format) nearest to the target by sentence embedding (``embedding_model``, default all-MiniLM-L6-v2),
    never from the target's own dialogue, as InstructERC retrieves them. The pool should be the training
    split: a pool named like an evaluation split (test, tst, dev, val ...) is refused, and so is one
    sharing dialogues with an input so named; an input itself is a valid pool when it is the training
    split.

    Returns the records; unusable rows (see ``conversations``) and, with ``media_root``, utterances
    whose clip is missing are counted skips. Raises ``InputError`` for options that cannot go together
    (named by their command-line flags), an unreadable input or pool, or an embedding model that does
    not load; ValueError for a choice not listed above.
    """
    with_media = bool(media_prefix or media_root)
    options = _Options(
        inputs=input_paths(inputs),
        format=format,
        dataset=dataset,
        template=template,
        window=window,
        aux=tuple(aux),
        labels=labels,
        speaker_names=speaker_names,
        demos=demos,
        demo_pool=None if demo_pool is None else Path(demo_pool),
        embedding_model=embedding_model,
    )
    options = dataclasses.replace(options, dataset=_check(options, with_media))
    dataset = options.dataset
    result = BuildResult(media_prefix=media_prefix, media_root=media_root)
    dialogues = read_dialogues(options.inputs, options.format, NATIVE.get(dataset), result)
    native = NATIVE.get(dataset) or tuple(sorted({t.emotion for t in _turns(dialogues)}))
    unified = options.labels == "unified"
    label_list = list(unified_labels(dataset) if unified else native)
    relabel = (lambda e: to_unified(dataset, e)) if unified else (lambda e: e)
    demo_texts = iter(_demos(options, dialogues, relabel) if demos else [])
    for (_, dialogue_id), located in progress(dialogues.items(), "dialogues", len(dialogues)):
        turns = [turn for _, turn in located]
        slots = prompts.slots(turns)
        for t, (where, turn) in enumerate(located):
            demo, clip = next(demo_texts, ""), f"dia{turn.dialogue_id}_utt{turn.turn}.mp4"
            if result.media_root is not None and not (result.media_root / clip).is_file():
                result.skip(where, f"missing media {result.media_root / clip}", "missing media")
                continue
            if "speaker" in options.aux and slots[t] >= speaker_slots(dataset):
                message = f"speaker slot {slots[t]} beyond the {speaker_slots(dataset)} offered"
                result.skip(where, f"{message} (no speaker_id record)", "speaker slot beyond offered")
            for query, response, clipped, offered in _turn_records(
                options, turns, t, label_list, relabel, demo
            ):
                media = [result.media_prefix + clip] if with_media and clipped else []
                meta = {"dataset": dataset, "dialogue_id": dialogue_id, "turn": turn.turn, "labels": offered}
                media_field = {"videos": media} if media else {}
                meta |= {"label_space": options.labels, "native": turn.emotion}
                result.keep(where, {"query": query, "response": response, **media_field, **meta})
    return result

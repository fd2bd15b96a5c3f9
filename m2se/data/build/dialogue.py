"""Dialogues → conversation-level ERC records the InstructERC way (erc_dialog, speaker_id, emotion_predict).

    python -m m2se.data.build dialogue train_sent_emo.csv --format meld --out meld_dialog_train.json \\
        --aux speaker,predict --demos 4 --demo-pool train_sent_emo.csv
    python -m m2se.data.build dialogue test_sent_emo.csv --format meld --out meld_dialog_test.json \\
        --demos 4 --demo-pool train_sent_emo.csv

Formats: meld (the official CSVs; joy, sadness, anger become InstructERC's joyful, sad, angry), emorynlp
(the JSON release; a scene is a dialogue, its speaker the first of "speakers"), jsonl (one
{"dialogue_id", "turn", "speaker", "text", "emotion"} per line, turns ordered by "turn"). Emotions must be
the dataset's native labels; for a dataset m2se does not know, the labels are the sorted set of emotions
seen. One erc_dialog record per utterance; --aux adds InstructERC's training-only auxiliary records
(speaker: speaker_id; predict: emotion_predict, from the second utterance of a dialogue on) whatever the
--template.

Each record holds query, response and: dataset, dialogue_id, turn, labels (the prompt's label list),
label_space (native or unified) and native (the turn's gold native emotion). Records are text-only
unless --media-prefix or --media-root is given (meld only): then erc_dialog and speaker_id records carry
the utterance's clip dia{D}_utt{U}.mp4 (emotion_predict never does: its answer is that clip's emotion).
Records that read alike in different dialogues ("Hi." opening two scenes) are all kept: a record's
identity includes its dataset, dialogue and turn.

Demonstrations (--demos K, --template instructerc) are the K utterances of --demo-pool (same --format)
nearest to the target by sentence embedding, never from the target's own dialogue. The pool should be
the training split: a pool named like an evaluation split (test, tst, dev, val ...) is refused, and so is
one sharing dialogues with an INPUT so named; INPUT itself is a valid pool when it is the training split.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from m2se.data.build.common import BuildResult, InputError, progress
from m2se.data.build.conversations import Dialogues, read_dialogues
from m2se.dialogue import prompts
from m2se.dialogue.labels import NATIVE, UNIFIED, speaker_slots, to_unified, unified_labels
from m2se.dialogue.retrieval import DemoRetriever

FORMATS = ("meld", "emorynlp", "jsonl")
AUX = ("speaker", "predict")
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
    add("--template", choices=("instructerc", "emoverse"), default="instructerc", help="erc_dialog prompt")
    add("--window", type=int, default=12, help="previous utterances in the context (default: 12)")
    add("--aux", type=_aux, default=(), metavar="speaker,predict", help="add auxiliary records (training)")
    add("--labels", choices=("native", "unified"), default="native", help="label space (default: native)")
    add("--speaker-names", choices=("slot", "real"), default="slot", help="Speaker_k (default) or real names")
    add("--demos", type=int, default=0, metavar="K", help="retrieved demonstrations per erc_dialog record")
    add("--demo-pool", type=Path, metavar="FILE", help="where demonstrations come from: the training split")
    add("--embedding-model", help="sentence-transformers folder or hub id (default: all-MiniLM-L6-v2)")


def _evaluation_split(path: Path) -> bool:
    return bool(EVAL_SPLITS & set(re.split(r"[^a-z0-9]+", path.stem.lower())))


def _check(args: argparse.Namespace) -> str:
    """The dataset name, after refusing option combinations that cannot be built."""
    dataset = args.dataset or {"meld": "meld", "emorynlp": "emorynlp"}.get(args.format)
    if dataset is None:
        raise InputError("--format jsonl needs --dataset NAME (meld, emorynlp, iemocap or another)")
    if args.labels == "unified" and dataset not in UNIFIED:
        raise InputError(f"--labels unified: no unified labels for {dataset!r} (known: {', '.join(UNIFIED)})")
    if (args.media_prefix or args.media_root) and args.format != "meld":
        raise InputError(f"--media-prefix/--media-root: --format {args.format} has no clips (meld only)")
    if args.window < 0 or args.demos < 0:
        raise InputError("--window and --demos must be >= 0")
    if bool(args.demos) != bool(args.demo_pool):
        raise InputError("--demos K and --demo-pool FILE go together")
    if args.demos and args.template != "instructerc":
        raise InputError("--demos: only --template instructerc has a slot for demonstrations")
    return dataset


def _turns(dialogues: Dialogues, index: int | None = None) -> list[prompts.Turn]:
    return [t for (i, _), located in dialogues.items() if index in (None, i) for _, t in located]


def _demos(args: argparse.Namespace, dialogues: Dialogues, relabel) -> list[str]:
    """``format_demos`` text for each turn of ``dialogues``, in their order."""
    pool_path: Path = args.demo_pool
    if _evaluation_split(pool_path):
        raise InputError(f"{pool_path}: named like an evaluation split; the demonstration pool must be train")
    same = [i for i, p in enumerate(args.inputs) if Path(p).resolve() == pool_path.resolve()]
    if same:
        pool = _turns(dialogues, same[0])
    else:
        pool_dialogues = read_dialogues([pool_path], args.format, NATIVE.get(args.dataset), BuildResult())
        pool = _turns(pool_dialogues)
        for index, path in enumerate(args.inputs):
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
        retriever = DemoRetriever(args.embedding_model)
        found = retriever.nearest(
            [q.text for q in queries],
            [q.dialogue_id for q in queries],
            [p.text for p in pool],
            [p.dialogue_id for p in pool],
            args.demos,
        )
    except (ValueError, OSError) as err:  # no model, a model that does not load
        raise InputError(f"{args.embedding_model or 'embedding model'}: {err}".splitlines()[0]) from None
    return [prompts.format_demos([(pool[i].text, relabel(pool[i].emotion)) for i in row]) for row in found]


def _turn_records(
    args: argparse.Namespace, turns: list[prompts.Turn], t: int, labels: list[str], relabel, demo: str
) -> list[tuple[str, str, bool, list[str]]]:
    """(query, response, carries the clip, offered labels) of turn ``t``: erc_dialog, then --aux ones."""
    window, names, answer = args.window, args.speaker_names, relabel(turns[t].emotion)
    if args.template == "emoverse":
        query, response = (
            prompts.emoverse_query(turns, t, labels, window, names),
            prompts.emoverse_answer(answer),
        )
    else:
        query, response = prompts.erc_query(turns, t, labels, window, names, demo), answer
    records = [(query, response, True, labels)]
    slot, offered = prompts.slots(turns)[t], speaker_slots(args.dataset)
    if "speaker" in args.aux and slot < offered:
        speakers = [f"Speaker_{k}" for k in range(offered)]
        records.append(
            (prompts.speaker_query(turns[t].text, args.dataset), f"Speaker_{slot}", True, speakers)
        )
    if "predict" in args.aux and t > 0:
        records.append((prompts.predict_query(turns, t, labels, window, names), answer, False, labels))
    return records


def run(args: argparse.Namespace) -> BuildResult:
    args.dataset = dataset = _check(args)
    result = BuildResult.for_args(args)
    dialogues = read_dialogues(args.inputs, args.format, NATIVE.get(dataset), result)
    native = NATIVE.get(dataset) or tuple(sorted({t.emotion for t in _turns(dialogues)}))
    unified = args.labels == "unified"
    labels = list(unified_labels(dataset) if unified else native)
    relabel = (lambda e: to_unified(dataset, e)) if unified else (lambda e: e)
    demos = iter(_demos(args, dialogues, relabel) if args.demos else [])
    with_media = bool(args.media_prefix or args.media_root)
    for (_, dialogue_id), located in progress(dialogues.items(), "dialogues", len(dialogues)):
        turns = [turn for _, turn in located]
        slots = prompts.slots(turns)
        for t, (where, turn) in enumerate(located):
            demo, clip = next(demos, ""), f"dia{turn.dialogue_id}_utt{turn.turn}.mp4"
            if result.media_root is not None and not (result.media_root / clip).is_file():
                result.skip(where, f"missing media {result.media_root / clip}", "missing media")
                continue
            if "speaker" in args.aux and slots[t] >= speaker_slots(dataset):
                message = f"speaker slot {slots[t]} beyond the {speaker_slots(dataset)} offered"
                result.skip(where, f"{message} (no speaker_id record)", "speaker slot beyond offered")
            for query, response, clipped, offered in _turn_records(args, turns, t, labels, relabel, demo):
                media = [result.media_prefix + clip] if with_media and clipped else []
                meta = {"dataset": dataset, "dialogue_id": dialogue_id, "turn": turn.turn, "labels": offered}
                media_field = {"videos": media} if media else {}
                meta |= {"label_space": args.labels, "native": turn.emotion}
                result.keep(where, {"query": query, "response": response, **media_field, **meta})
    return result

"""Scored predictions: score texts against gold, read prediction files, write the results a user reads.

``OUT/predictions/<task>.jsonl`` (query, response, label, media, parsed answer), ``OUT/metrics.json``
(``{task: {metric: value}}``), ``OUT/confusion_<task>.png`` for classification tasks, and a markdown
table; for ECPE also ``OUT/ecpe_semeval.json`` in the SemEval-2024 Task 3 subtask-2 format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from m2se.data.records import RecordError, raw_items
from m2se.files import atomic_file
from m2se.metrics import TaskMetrics
from m2se.tasks import TASKS, infer_task

# Columns of the summary table, in order; a task shows the ones it has.
TABLE = (
    "count",
    "accuracy",
    "f1_weighted",
    "f1_macro",
    "phrase_f1",
    "exact_match",
    "rougeL",
    "bleu4",
    "pair_precision",
    "pair_recall",
    "pair_f1",
    "pair_f1_weighted",
    "unparseable",
)


@dataclass
class TaskResult:
    metrics: dict
    rows: list[dict] = field(default_factory=list)
    confusion: tuple[tuple[str, ...], list[list[int]]] | None = None


def jsonable(parsed):
    """A parsed answer as JSON: ECPE triples and FER phrases become lists."""
    if isinstance(parsed, list):
        return [list(p) for p in parsed]
    return list(parsed) if isinstance(parsed, tuple) else parsed


def score(
    task: str,
    predictions: Sequence[str],
    rows: Sequence[dict],
    protocol: str = "semeval",
    parse: str = "strict",
) -> TaskResult:
    """Score raw ``predictions`` against ``rows`` (each with ``label`` and optional ``meta``)."""
    metrics = TaskMetrics(task, protocol, parse)
    metrics.update(list(predictions), [r["label"] for r in rows], [r.get("meta") or {} for r in rows])
    out = [
        {**r, "response": p, "parsed": jsonable(parsed_answer(task, p, r.get("meta"), parse))}
        for r, p in zip(rows, predictions, strict=True)
    ]
    return TaskResult(metrics.compute(), out, confusion_of(metrics))


def parsed_answer(task: str, text: str, meta: dict | None, parse: str = "strict"):
    """What the metrics read from one answer (open-label tasks: against the record's own labels)."""
    labels = (meta or {}).get("labels") if TASKS[task].open_labels else None
    return TASKS[task].parse(text, labels, parse)


def confusion_of(metrics: TaskMetrics):
    if TASKS[metrics.task.name].kind != "classification":
        return None
    try:
        labels, matrix = metrics.confusion()
    except ValueError:  # dialogue scores over several corpora: one matrix each would be needed
        return None
    return labels, matrix.int().tolist()


def read_predictions(path: str | Path, task: str | None) -> dict[str, list[dict]]:
    """Rows of a JSON/JSONL predictions file (``response`` = model output, ``label`` = gold), by task.

    The task comes from ``task`` or is inferred from each record's ``query``.
    """
    path, by_task = Path(path), {}
    for number, item in raw_items(path):
        where = f"{path.name}:{number}"
        if isinstance(item, RecordError):
            raise item
        if not isinstance(item, dict) or not isinstance(item.get("response"), str) or "label" not in item:
            raise RecordError(
                where, "expected an object with 'response' (prediction) and 'label' (gold)", "bad"
            )
        name = task or infer_task(item.get("query", ""))
        if name is None:
            raise RecordError(where, "query fits no task (pass task=...)", "unknown task")
        media = [*_listed(item.get("images")), *_listed(item.get("videos"))]
        meta = {k: v for k, v in item.items() if k not in ("query", "response", "label", "images", "videos")}
        row = {
            "where": where,
            "query": item.get("query", ""),
            "label": str(item["label"] or ""),
            "media": media,
            "meta": meta,
            "prediction": item["response"],
        }
        by_task.setdefault(name, []).append(row)
    return by_task


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def write_results(results: dict[str, TaskResult], out_dir: str | Path) -> Path:
    """Write predictions, metrics.json, confusion matrices and (for ECPE) the SemEval export."""
    out = Path(out_dir)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    for task, result in results.items():
        # Written beside and renamed: a full disk names the file and leaves no half-written one.
        with atomic_file(out / "predictions" / f"{task}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for row in result.rows:
                f.write(
                    json.dumps({k: v for k, v in row.items() if k != "prediction"}, ensure_ascii=False) + "\n"
                )
        if result.confusion is not None:
            from m2se.metrics.plots import plot_confusion

            plot_confusion(*result.confusion, out / f"confusion_{task}.png", title=task)
        if task == "ecpe":
            export_semeval(result.rows, out / "ecpe_semeval.json")
    metrics = {task: result.metrics for task, result in results.items()}
    with atomic_file(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return out


def markdown_table(results: dict[str, TaskResult]) -> str:
    columns = [c for c in TABLE if any(c in r.metrics for r in results.values())]
    lines = ["| task | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for task, result in results.items():
        cells = [_cell(result.metrics.get(c)) for c in columns]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


_DIALOGUE = re.compile(r"dia_?(\d+)_?utt_?(\d+)", re.IGNORECASE)


def export_semeval(rows: Sequence[dict], path: str | Path) -> tuple[int, int]:
    """ECPE predictions per conversation, as SemEval-2024 Task 3 subtask 2 submissions are written:
    ``[{"conversation_ID": 1375, "emotion-cause_pairs": [["5_surprise", "2"], ...]}, ...]``.

    The conversation comes from ``meta["conversation_ID"]`` or the clip name (``dia1375utt5.mp4``);
    rows with neither are left out and counted. Returns (conversations written, rows left out).
    """
    conversations: dict[int, list] = {}
    left_out = 0
    for row in rows:
        conversation = (row.get("meta") or {}).get("conversation_ID")
        if conversation is None:
            match = next((m for m in map(_DIALOGUE.search, row.get("media", [])) if m), None)
            conversation = int(match[1]) if match else None
        if conversation is None:
            left_out += 1
            continue
        pairs = conversations.setdefault(int(conversation), [])
        for target, emotion, cause in row.get("parsed") or []:
            pair = [f"{target}_{emotion}", str(cause)]
            if pair not in pairs:
                pairs.append(pair)
    export = [{"conversation_ID": c, "emotion-cause_pairs": p} for c, p in sorted(conversations.items())]
    Path(path).write_text(
        "[\n" + ",\n".join(json.dumps(c) for c in export) + "\n]\n"
    )  # a conversation a line
    return len(export), left_out

"""Scored predictions: score texts against gold, read prediction files, write the results a user reads.

``OUT/predictions/<task>.jsonl`` (query, response, label, media, parsed answer), ``OUT/metrics.json``
(``{task: {metric: value}}``), ``OUT/confusion_<task>.png`` for classification tasks, and a markdown
table; for ECPE also ``OUT/ecpe_semeval.json`` in the SemEval-2024 Task 3 subtask-2 format.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from m2se.data.records import RecordError
from m2se.dialogue.labels import NATIVE
from m2se.files import atomic_file, dumps, write_json
from m2se.metrics import TaskMetrics
from m2se.tasks import TASKS

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
    """One task's scores, scored rows and confusion matrix, and how they were obtained.

    ``parse`` and ``protocol``: the parse mode the task's answers were read with and the ECPE
    protocol (None for other tasks); ``skipped``: records left out while loading, by reason;
    ``duplicates``: duplicate rows dropped (``duplicates=dedupe``). All of them go to metrics.json.
    """

    metrics: dict
    rows: list[dict] = field(default_factory=list)
    confusion: tuple[tuple[str, ...], list[list[int]]] | None = None
    parse: str | None = None
    protocol: str | None = None
    skipped: Counter = field(default_factory=Counter)
    duplicates: int = 0
    source: str = ""  # the file the rows came from

    def summary(self) -> dict:
        """metrics.json's entry: the scores (non-finite → None), then the denominators and the scoring."""
        finite = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in self.metrics.items()
        }
        if not finite.get("count"):  # nothing scored: no score, only what was left out
            finite = {"count": 0}
        return {
            **finite,
            "skipped": dict(self.skipped.most_common()),
            "duplicates_dropped": self.duplicates,
            "parse": self.parse,
            "protocol": self.protocol,
        }


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
    parse: str = "exact",
    source: str = "",
) -> TaskResult:
    """Score raw ``predictions`` against ``rows`` (each with ``label``, optional ``meta`` and ``where``)
    from the file ``source``; no rows give a result with ``count`` 0.

    A gold label the parse mode's scorer cannot read raises RecordError naming the row's ``where``.
    """
    metrics = TaskMetrics(task, protocol, parse)
    spec = metrics.task
    if spec.open_labels:
        _check_corpora(rows)
    if spec.kind == "classification" and not spec.open_labels:
        for row in rows:
            if spec.gold(row["label"], metrics.parse) not in spec.labels:
                raise RecordError(
                    row.get("where", task),
                    f"gold label {row['label']!r} is not one of {task}'s labels "
                    f"({', '.join(spec.labels)}) as parse={metrics.parse} reads it",
                    "unknown label",
                )
    metrics.update(list(predictions), [r["label"] for r in rows], [r.get("meta") or {} for r in rows])
    out = [
        {**r, "response": p, "parsed": jsonable(parsed_answer(task, p, r.get("meta"), metrics.parse))}
        for r, p in zip(rows, predictions, strict=True)
    ]
    result = result_of(metrics, out)
    result.source = str(source)
    return result


def result_of(metrics: TaskMetrics, rows: list[dict]) -> TaskResult:
    """A TaskResult from computed metrics and scored rows, naming the parse mode and protocol used."""
    kind = metrics.task.kind
    return TaskResult(
        metrics.compute(),
        rows,
        confusion_of(metrics),
        parse=metrics.parse if kind == "classification" else kind,
        protocol=metrics.protocol if kind == "pairs" else None,
    )


def _check_corpora(rows: Sequence[dict]) -> None:
    """A corpus m2se has no native label list for is scored over its first row's labels: every row of
    it must offer the same ones (RecordError naming the first that does not)."""
    first: dict[str, list] = {}
    for row in rows:
        meta = row.get("meta") or {}
        dataset, labels = meta.get("dataset"), meta.get("labels")
        if dataset in NATIVE:
            continue
        expected = first.setdefault(dataset, labels)
        if labels != expected:
            raise RecordError(
                row.get("where", dataset),
                f"{dataset} rows offer other labels than its first row ({', '.join(map(str, expected))})",
                "bad metadata",
            )


def parsed_answer(task: str, text: str, meta: dict | None, parse: str = "exact"):
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


def write_results(results: dict[str, TaskResult], out_dir: str | Path) -> Path:
    """Write predictions, metrics.json, confusion matrices and (for ECPE) the SemEval export."""
    out = Path(out_dir)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    for task, result in results.items():
        # Written beside and renamed: a full disk names the file and leaves no half-written one.
        with atomic_file(out / "predictions" / f"{task}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for row in result.rows:
                f.write(dumps({k: v for k, v in row.items() if k != "prediction"}, ensure_ascii=False) + "\n")
        if result.confusion is not None:
            from m2se.metrics.plots import plot_confusion

            plot_confusion(*result.confusion, out / f"confusion_{task}.png", title=task)
        if task == "ecpe":
            export_semeval(result.rows, out / "ecpe_semeval.json")
    write_json(out / "metrics.json", {task: result.summary() for task, result in results.items()}, indent=2)
    return out


def markdown_table(results: dict[str, TaskResult]) -> str:
    columns = [c for c in TABLE if any(c in r.metrics for r in results.values())]
    lines = ["| task | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for task, result in results.items():
        shown = result.summary()  # a task with nothing scored shows its count only
        cells = [_cell(shown.get(c)) for c in columns]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines.append("")
    for task, result in results.items():  # how each row was scored, and what it was scored over
        how = f"parse={result.parse}" + (f", protocol={result.protocol}" if result.protocol else "")
        left = ", ".join(f"{reason} {n}" for reason, n in result.skipped.most_common())
        left += f"{', ' if left else ''}duplicates {result.duplicates}" if result.duplicates else ""
        lines.append(
            f"{task}: {how}; {result.metrics.get('count', 0)} scored"
            + (f"; left out: {left}" if left else "")
        )
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


_DIALOGUE = re.compile(r"dia_?([0-9]{1,9})_?utt_?([0-9]{1,9})", re.IGNORECASE)


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
    with atomic_file(path) as tmp:  # a conversation a line
        tmp.write_text("[\n" + ",\n".join(dumps(c) for c in export) + "\n]\n")
    return len(export), left_out

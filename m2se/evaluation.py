"""Scored predictions: score texts against gold, read prediction files, write the results a user reads.

``OUT/predictions/<task>.jsonl`` (query, response, label, media, parsed answer), ``OUT/metrics.json``
(``{task: {metric: value}}``), ``OUT/confusion_<task>.png`` for classification tasks, and a markdown
table; for ECPE also ``OUT/ecpe_semeval.json`` in the SemEval-2024 Task 3 subtask-2 format.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m2se.data.records import RecordError
from m2se.files import atomic_file, dumps, write_json
from m2se.tasks import TASKS, TaskMetrics
from m2se.tasks.prediction import Prediction

log = logging.getLogger(__name__)

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
    rows: list[Prediction] = field(default_factory=list)
    confusion: tuple[tuple[str, ...], list[list[int]]] | None = None
    parse: str | None = None
    protocol: str | None = None
    skipped: Counter = field(default_factory=Counter)
    duplicates: int = 0
    source: str = ""  # the file the rows came from
    errors: list[str] = field(default_factory=list)  # ``file:record: reason`` of rows skipped while scoring

    def summary(self) -> dict:
        """metrics.json's entry: the scores (non-finite → None), then the denominators and the scoring."""
        finite = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in self.metrics.items()
        }
        if not finite.get("count"):  # nothing scored: no score, only what was left out
            finite = {"count": 0, "unparseable": 0}
        return {
            **finite,
            "skipped": dict(self.skipped.most_common()),
            "duplicates_dropped": self.duplicates,
            "parse": self.parse,
            "protocol": self.protocol,
        }


def as_prediction(task: str, row: Prediction | Mapping) -> Prediction:
    """``row`` as a Prediction of ``task``: a Prediction as it is, a mapping with ``label`` and optional
    ``where``, ``query``, ``media``, ``meta`` keys as one."""
    if isinstance(row, Prediction):
        return row
    return Prediction(
        task,
        row.get("where", task),
        row.get("query", ""),
        row["label"],
        list(row.get("media", [])),
        dict(row.get("meta") or {}),
    )


def score(
    task: str,
    predictions: Sequence[str],
    rows: Sequence[Prediction | Mapping],
    protocol: str = "semeval",
    parse: str | None = None,
    source: str = "",
    skip_errors: bool = False,
) -> TaskResult:
    """Score raw ``predictions`` against ``rows`` (their gold ``label``, ``meta`` and ``where``) from the
    file ``source``; no rows give a result with ``count`` 0. The rows are answered and parsed in place.

    A gold label the parse mode's scorer cannot read raises RecordError naming the row's ``where``;
    with ``skip_errors`` such rows are left out, counted in ``skipped`` and listed in ``errors``.
    """
    metrics = TaskMetrics(task, protocol, parse)
    rows = [as_prediction(task, row) for row in rows]
    answer = metrics.task.answer
    problem = answer.check_rows(rows)
    if problem is not None:
        raise RecordError(problem[0], problem[1], "bad metadata")
    for row, prediction in zip(rows, predictions, strict=True):
        row.response = prediction
    kept, skipped, errors = scorable(task, metrics.parse, rows, skip_errors)
    metrics.add(kept)
    result = result_of(metrics, kept)
    result.source, result.skipped, result.errors = str(source), skipped, errors
    return result


def scorable(
    task: str, mode: str, rows: Sequence, skip_errors: bool, gold: Callable[[Any], str] = lambda r: r.label
) -> tuple[list, Counter, list[str]]:
    """The rows (predictions, or records with ``gold=lambda r: r.response``) whose gold answer the parse
    mode's scorer can read, with the count and ``file:record: reason`` lines of the others. Without
    ``skip_errors`` the first other raises RecordError naming its ``where``."""
    answer, kept, skipped, errors = TASKS[task].answer, [], Counter(), []
    for row in rows:
        problem = answer.gold_problem(task, gold(row), mode)
        if problem is None:
            kept.append(row)
            continue
        error = RecordError(row.where, problem, "unknown label")
        if not skip_errors:
            raise error
        skipped[error.reason] += 1
        errors.append(str(error))
    return kept, skipped, errors


def result_of(metrics: TaskMetrics, rows: list[Prediction]) -> TaskResult:
    """A TaskResult from computed metrics and scored rows, naming the parse mode and protocol used."""
    return TaskResult(
        metrics.compute(), rows, confusion_of(metrics), parse=metrics.reading, protocol=metrics.protocol_used
    )


def confusion_of(metrics: TaskMetrics):
    try:
        labels, matrix = metrics.confusion()
    except ValueError:  # no single matrix: not a label task, or dialogue scores over several corpora
        return None
    return labels, matrix.int().tolist()


def write_results(
    results: dict[str, TaskResult],
    out_dir: str | Path,
    baselines: Mapping[str, Mapping[str, TaskResult]] | None = None,
) -> Path:
    """Write predictions, metrics.json, confusion matrices and (for ECPE) the SemEval export.
    ``baselines`` (task → name → result on the same rows, ``m2se.results``) go to metrics.json under
    each task's ``baselines``."""
    out = Path(out_dir)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    for task, result in results.items():
        # Written beside and renamed: a full disk names the file and leaves no half-written one.
        with atomic_file(out / "predictions" / f"{task}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for row in result.rows:
                f.write(dumps(row.row(), ensure_ascii=False) + "\n")
        if result.confusion is not None:
            from m2se.metrics.plots import plot_confusion

            plot_confusion(*result.confusion, out / f"confusion_{task}.png", title=task)
        for note in TASKS[task].answer.write_outputs(task, result.rows, out):
            log.warning(note)  # a file that leaves rows out says so
    summaries = {task: result.summary() for task, result in results.items()}
    for task, scored in (baselines or {}).items():
        summaries[task]["baselines"] = {name: result.summary() for name, result in scored.items()}
    write_json(out / "metrics.json", summaries, indent=2)
    return out


def summary_table(
    summaries: Mapping[str, Mapping], extra: Mapping[str, Mapping[str, str]] | None = None
) -> str:
    """metrics.json's ``{task: {metric: value}}`` as a markdown table of the ``TABLE`` columns some task
    has, then the ``extra`` columns (column → task → cell text; "–" where a task has none)."""
    extra = extra or {}
    columns = [c for c in TABLE if any(c in shown for shown in summaries.values())]
    lines = [
        "| task | " + " | ".join([*columns, *extra]) + " |",
        "|---" * (len(columns) + len(extra) + 1) + "|",
    ]
    for task, shown in summaries.items():
        cells = [_cell(shown.get(c)) for c in columns] + [column.get(task, "–") for column in extra.values()]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(
    results: dict[str, TaskResult], extra: Mapping[str, Mapping[str, str]] | None = None
) -> str:
    """The summary table (plus ``extra`` columns, as ``summary_table``) and a line per task saying
    how it was scored and what was left out."""
    # A task with nothing scored shows its count only (its summary holds no score).
    lines = [summary_table({task: result.summary() for task, result in results.items()}, extra), ""]
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

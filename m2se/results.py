"""Results with their context: every task's scores beside its trivial baselines on the same test rows.

``evaluate.py`` scores each baseline its task offers (``AnswerFormat.baselines``: majority label or
phrase set, ECPE self-cause and self+previous, ERI's constant text) on exactly the rows the model was
scored on, with the same parse mode and ECPE protocol, and writes them as metrics.json's
``baselines``, the table's ``vs baseline`` column and ``results.md``. A model is compared on its
task's headline metrics (``AnswerFormat.headline``) with the best of its baselines on each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from m2se.evaluation import TABLE, TaskResult, score
from m2se.files import atomic_file, first_line
from m2se.tasks import TASKS

# Rows of results.md's per-task tables: the summary table's scores plus the unparseable share.
SHOWN = tuple(c for c in TABLE if c not in ("count", "unparseable")) + ("unparseable_rate",)


@dataclass(frozen=True)
class Comparison:
    """A model's headline metrics, each against the best baseline on it: (metric, model value,
    baseline name, baseline value)."""

    rows: tuple[tuple[str, float, str, float], ...]

    @property
    def above(self) -> bool:
        """Above the best baseline on every headline metric."""
        return all(model > value for _, model, _, value in self.rows)

    def cell(self) -> str:
        def sign(model: float, value: float) -> str:
            return ">" if model > value else "=" if model == value else "<"

        return "; ".join(f"{m} {v:.4f} {sign(v, b)} {b:.4f} {name}" for m, v, name, b in self.rows)


def score_baselines(
    results: dict[str, TaskResult], protocol: str, parse: str | None
) -> tuple[dict[str, dict[str, TaskResult]], list[str]]:
    """task → baseline name → its result on the task's scored rows (tasks without rows have none), and
    one line per baseline that cannot answer these rows (an ECPE query without its target line: a
    predictions file that dropped the query), which is left out rather than failing the run."""
    scored: dict[str, dict[str, TaskResult]] = {}
    notes = []
    for task, result in results.items():
        for name in TASKS[task].answer.baselines if result.rows else ():
            rows = [replace(r, meta=dict(r.meta), response=None, parsed=None) for r in result.rows]
            try:
                answers = TASKS[task].baseline(name, rows, parse)
                scored.setdefault(task, {})[name] = score(task, answers, rows, protocol, parse, result.source)
            except ValueError as err:  # RecordError included
                notes.append(f"{task}: no {name} baseline for these rows ({first_line(err)})")
    return scored, notes


def compare(task: str, result: TaskResult, baselines: dict[str, TaskResult]) -> Comparison | None:
    """The model against the best baseline on each of the task's headline metrics, or None when it
    has no baseline or no such score."""
    return compare_metrics(task, result.metrics, {name: r.metrics for name, r in baselines.items()})


def compare_metrics(
    task: str, metrics: Mapping[str, object], baselines: Mapping[str, Mapping[str, object]]
) -> Comparison | None:
    """``compare`` on plain metric mappings (a task's entry of metrics.json and its ``baselines``)."""

    def value(m: Mapping[str, object], metric: str) -> float | None:
        v = m.get(metric)
        return float(v) if isinstance(v, int | float) and math.isfinite(v) else None

    rows = []
    for metric in TASKS[task].answer.headline:
        candidates = [
            (value(b, metric), name) for name, b in baselines.items() if value(b, metric) is not None
        ]
        if value(metrics, metric) is None or not candidates:
            return None
        best, name = max(candidates, key=lambda c: c[0])
        rows.append((metric, value(metrics, metric), name, best))
    return Comparison(tuple(rows)) if rows else None


def _number(value) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4f}"
    return "–" if value is None else str(value)


def results_markdown(
    results: dict[str, TaskResult],
    baselines: dict[str, dict[str, TaskResult]],
    scored: str,
    notes: Sequence[str] = (),
) -> str:
    """results.md: per task, its denominators and scoring, then a metric × (model, baselines) table.
    ``scored`` says what was scored (a checkpoint, a predictions file, a baseline)."""
    lines = [
        "# Results",
        "",
        f"Scored: {scored}.",
        "",
        "Baselines answer the same test rows without looking at the inputs, scored with the same parse mode",
        "and protocol. A model is above its baselines when it beats the best of them on every headline metric",
        "of its task ("
        + "; ".join(
            f"{t}: {' and '.join(TASKS[t].answer.headline)}" for t in results if TASKS[t].answer.headline
        )
        + ").",
        "",
    ]
    for task, result in results.items():
        own = baselines.get(task, {})
        comparison = compare(task, result, own)
        verdict = (
            ""
            if comparison is None
            else (" — above baseline" if comparison.above else " — NOT above baseline")
        )
        lines += [f"## {task}{verdict}", ""]
        skipped = ", ".join(f"{reason} {n}" for reason, n in result.skipped.most_common()) or "none"
        how = f"parse={result.parse}" + (f", protocol={result.protocol}" if result.protocol else "")
        count = result.metrics.get("count", 0)
        lines += [f"{result.source or 'rows'}: {count} scored; skipped: {skipped}; {how}", ""]
        if comparison is not None:
            lines += [f"{comparison.cell()}", ""]
        rows = [m for m in SHOWN if m in result.metrics]
        if not rows:
            continue
        lines += ["| " + " | ".join(["metric", "model", *own]) + " |", "|---" * (len(own) + 2) + "|"]
        for metric in rows:
            cells = [_number(result.metrics.get(metric))] + [
                _number(r.metrics.get(metric)) for r in own.values()
            ]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        lines.append("")
    if notes:
        lines += ["## Baselines left out", "", *(f"- {note}" for note in notes), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_results_md(
    out_dir: str | Path,
    results: dict[str, TaskResult],
    baselines: dict[str, dict[str, TaskResult]],
    scored: str,
    notes: Sequence[str] = (),
) -> Path:
    """``out_dir/results.md`` (``results_markdown``), written whole."""
    path = Path(out_dir) / "results.md"
    with atomic_file(path) as tmp:
        tmp.write_text(results_markdown(results, baselines, scored, notes), encoding="utf-8")
    return path


def baseline_column(
    results: dict[str, TaskResult], baselines: dict[str, dict[str, TaskResult]]
) -> dict[str, dict[str, str]]:
    """The summary table's ``vs baseline`` column (``markdown_table``'s ``extra``), empty without baselines."""
    cells = {}
    for task, result in results.items():
        comparison = compare(task, result, baselines.get(task, {}))
        if comparison is not None:
            cells[task] = comparison.cell()
    return {"vs baseline": cells} if cells else {}

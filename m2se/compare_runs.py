"""Several evaluations side by side: each task's headline metrics against its best trivial baseline.

    python -m m2se.compare_runs demo_out/eval_first demo_out/eval

Each argument is a folder ``evaluate.py`` wrote (its ``metrics.json``, baselines included). The table
has a row per task and headline metric (``AnswerFormat.headline``) and a column per run, each cell
``model > best baseline`` (or ``<``, ``=``), then says which tasks are above their baselines in at
least one run. ``make demo`` ends with it, so that a task the recipe trains only in stage one, and
forgets in stage two, reads as that rather than as a failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from m2se.results import Comparison, compare_metrics
from m2se.tasks import TASKS


def read_run(folder: str | Path) -> dict[str, dict]:
    """task → its metrics.json entry (with ``baselines``) of the run folder ``folder``. Raises ValueError,
    one line naming the file, when it is missing or not a JSON object of tasks."""
    path = Path(folder) / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (evaluate.py writes it in its run folder)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not readable as JSON ({err})") from None
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise ValueError(f"{path}: expected an object of task → metrics, as evaluate.py writes")
    return {task: entry for task, entry in metrics.items() if task in TASKS}


def comparisons(runs: Mapping[str, Mapping[str, dict]]) -> dict[str, dict[str, Comparison | None]]:
    """task → run name → its comparison (None: the run has no such task, or no baseline for it)."""
    tasks = list(dict.fromkeys(task for metrics in runs.values() for task in metrics))
    return {
        task: {
            name: compare_metrics(task, metrics[task], metrics[task].get("baselines") or {})
            if task in metrics
            else None
            for name, metrics in runs.items()
        }
        for task in tasks
    }


def runs_table(runs: Mapping[str, Mapping[str, dict]]) -> str:
    """The markdown table and its closing lines, as printed."""
    table = comparisons(runs)
    lines = [
        "| task | metric | " + " | ".join(runs) + " |",
        "|---|---|" + "---|" * len(runs),
    ]
    above, never = [], []
    for task, by_run in table.items():
        for metric in TASKS[task].answer.headline:
            cells = [_cell(c, metric) for c in by_run.values()]
            lines.append(f"| {task} | {metric} | " + " | ".join(cells) + " |")
        (above if any(c is not None and c.above for c in by_run.values()) else never).append(task)
    lines += [
        "",
        "cells: model, then > = < the best baseline on the same test rows, and that baseline's name",
        f"above its baselines in at least one run: {', '.join(above) or 'none'}",
    ]
    if never:
        lines.append(f"in none: {', '.join(never)}")
    return "\n".join(lines)


def _cell(comparison: Comparison | None, metric: str) -> str:
    if comparison is None:
        return "–"
    for name, model, baseline, value in comparison.rows:
        if name == metric:
            sign = ">" if model > value else "=" if model == value else "<"
            return f"{model:.4f} {sign} {value:.4f} {baseline}"
    return "–"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m m2se.compare_runs", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="evaluate.py run folders (each holding metrics.json)")
    args = parser.parse_args(argv)
    # A run folder, or its metrics.json.
    folders = [Path(r).parent if Path(r).name == "metrics.json" else Path(r) for r in args.runs]
    names = [f.name or str(f) for f in folders]
    if len(set(names)) < len(names) and len(set(names)) < len({f.resolve() for f in folders}):
        names = [str(f) for f in folders]  # other folders of the same name: their paths tell them apart
    # The same run given twice gets two columns, numbered.
    names = [n if names.count(n) == 1 else f"{n} ({names[:i].count(n) + 1})" for i, n in enumerate(names)]
    try:
        runs = {name: read_run(folder) for name, folder in zip(names, folders, strict=True)}
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(runs_table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Figures of a dataset: answer distribution and text-length histogram per task."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def plot_inspection(answers: dict[str, dict], lengths: dict[str, list[int]], unit: str, path: Path) -> Path:
    """One row per task: its answers (top 10) on the left, its query+response lengths on the right."""
    tasks = list(lengths)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 2.2 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks, strict=True):
        top = list(answers.get(task, {}).items())[:10]
        row[0].barh([str(k) for k, _ in top][::-1], [v for _, v in top][::-1], color="tab:blue")
        row[0].set_title(f"{task}: answers ({sum(v for _, v in answers[task].items())} counts)", fontsize=9)
        row[0].tick_params(labelsize=8)
        row[1].hist(lengths[task], bins=30, color="tab:orange")
        row[1].set_title(f"{task}: query+response length ({unit}, {len(lengths[task])} records)", fontsize=9)
        row[1].tick_params(labelsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

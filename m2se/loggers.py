"""CSVLogger that a resumed run continues instead of overwriting; validation generations and confusion
matrices for loggers that take tables and images (wandb)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from m2se.files import atomic_file
from m2se.tasks import TASKS


class ResumableCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` (``save_dir/name/version/metrics.csv``); with ``resume`` set (train.py
    passes ``resume=``), an existing ``metrics.csv`` is continued rather than deleted.

    The rows of the interrupted run that come after the checkpoint (steps at or past the first step
    the resumed run logs) are dropped, so the file reads as one uninterrupted run. Rows are flushed
    every ``flush_logs_every_n_steps`` (the config sets 1: a killed run loses at most its last step's).
    """

    def __init__(self, *args, resume: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resume = resume

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedWriter(self.log_dir, continued=self.resume is not None)
        return self._experiment


class _ContinuedWriter(ExperimentWriter):
    def __init__(self, log_dir: str, continued: bool) -> None:
        self._continued, self._trim_pending = continued, False
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if not self._continued:  # a fresh run: Lightning's behaviour, the old file goes
            super()._check_log_dir_exists()
        elif os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys = list(csv.DictReader(f).fieldnames or [])
            self._trim_pending = True

    def log_metrics(self, metrics_dict: dict, step: int | None = None) -> None:
        if self._trim_pending and step is not None:
            self._trim_pending = False
            self._drop_rows_from(step)
        super().log_metrics(metrics_dict, step)

    def _drop_rows_from(self, step: int) -> None:
        with open(self.metrics_file_path, newline="") as f:
            rows = [row for row in csv.DictReader(f) if row.get("step") and int(float(row["step"])) < step]
        with atomic_file(self.metrics_file_path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


GENERATION_COLUMNS = ["where", "query", "answer", "gold", "parsed", "correct"]


def log_generations(loggers, task: str, rows: list, step: int, parse: str | None = None) -> None:
    """Validation's generated answers of ``task`` (``Prediction`` rows, parsed) as a table, for the
    loggers that take tables (wandb): the query's first 200 characters, answer, gold, parsed answer
    and, for label tasks, whether it is right."""
    tables = [logger for logger in loggers if callable(getattr(logger, "log_table", None))]
    if not tables or not rows:
        return
    spec = TASKS[task]
    labelled = bool(spec.labels) or spec.open_labels
    data = [
        [
            row.where,
            row.query[:200],
            row.response,
            row.label,
            None if row.parsed is None else str(row.parsed),
            (row.parsed == spec.gold(row.label, parse)) if labelled else None,
        ]
        for row in rows
    ]
    for logger in tables:
        logger.log_table(key=f"val/{task}/generations", columns=GENERATION_COLUMNS, data=data, step=step)


def log_confusion(loggers, task: str, labels, matrix, folder: str | Path, step: int) -> None:
    """The confusion matrix as an image (``confusion_<task>_step<N>.png`` in ``folder``), for the
    loggers that take images (wandb)."""
    images = [logger for logger in loggers if callable(getattr(logger, "log_image", None))]
    if not images:
        return
    from m2se.metrics.plots import plot_confusion

    path = plot_confusion(labels, matrix, Path(folder) / f"confusion_{task}_step{step}.png", title=task)
    for logger in images:
        logger.log_image(key=f"val/{task}/confusion", images=[str(path)], step=step)

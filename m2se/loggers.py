"""CSVLogger that a resumed run continues instead of overwriting."""

from __future__ import annotations

import csv
import os

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from m2se.files import atomic_file


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

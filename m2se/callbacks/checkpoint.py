"""ModelCheckpoint whose ``every_n_train_steps`` saves even before there is a metric to rank by."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class PeriodicCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (best by ``monitor`` + ``last.ckpt``), except that with
    ``every_n_train_steps`` it writes ``last.ckpt`` at every period even while ``monitor`` has no value.

    Lightning defers such saves to the next validation, which may be an epoch of GPU hours away, so a
    run killed before its first validation had nothing to resume from. The top-k selection still
    waits for the monitored metric.
    """

    def __init__(self, *args, every_n_train_steps: int | None = None, **kwargs) -> None:
        super().__init__(*args, every_n_train_steps=every_n_train_steps, **kwargs)
        self.period = every_n_train_steps or 0
        self._period_saved_at = 0  # global step of the last periodic save (micro-batches share a step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        step = trainer.global_step
        due = self.period > 0 and step % self.period == 0 and step != self._period_saved_at
        waiting = self.monitor is not None and self.monitor not in trainer.callback_metrics
        if due and waiting and self.save_last and self.dirpath and not trainer.sanity_checking:
            last = Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"
            trainer.save_checkpoint(last, weights_only=False)  # the full training state, for resume=
            self._period_saved_at = step

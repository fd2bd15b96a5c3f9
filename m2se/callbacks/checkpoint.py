"""ModelCheckpoint with a step period that writes last.ckpt whether or not validation has run."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class PeriodicCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (the best by ``monitor`` and ``last.ckpt``, at every validation or
    epoch end), plus ``last.ckpt`` every ``every_n_train_steps`` optimizer steps.

    Lightning's own ``every_n_train_steps`` replaces the per-validation saves and defers every save
    until ``monitor`` has a value (which may be an epoch of GPU hours away) and then ranks periodic
    saves by a stale metric; here the period only refreshes ``last.ckpt``, and the best checkpoint
    is chosen at validations as without it. Set ``enable_version_counter=False`` (the config does)
    so that both write the same ``last.ckpt`` rather than ``last-v1.ckpt``.
    """

    def __init__(self, *args, every_n_train_steps: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if every_n_train_steps is not None and every_n_train_steps < 0:
            raise ValueError(f"every_n_train_steps must be >= 0, got {every_n_train_steps}")
        self.period = every_n_train_steps or 0
        self._period_saved_at = 0  # global step of the last periodic save (micro-batches share a step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        step = trainer.global_step
        due = self.period > 0 and step % self.period == 0 and step != self._period_saved_at
        if due and self.dirpath and not trainer.sanity_checking:
            last = Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"
            trainer.save_checkpoint(last, weights_only=False)  # the full training state, for resume=
            self._period_saved_at = step

    def _save_topk_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        # Before the first validation there is nothing to rank (a short run, max_steps before the epoch
        # ends): Lightning would warn that the monitored key is missing; last.ckpt is written anyway.
        validated = trainer.fit_loop.epoch_loop.val_loop._has_run
        if self.monitor is not None and self.monitor not in monitor_candidates and not validated:
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def forget_best(self) -> None:
        """Start ranking afresh (a curriculum's next stage validates other tasks: its val/loss is not
        comparable); checkpoints already written stay on disk."""
        self.best_k_models, self.best_model_path, self.best_model_score = {}, "", None
        self.kth_best_model_path, self.kth_value = (
            "",
            self.kth_value.new_tensor(float("inf") if self.mode == "min" else -float("inf")),
        )

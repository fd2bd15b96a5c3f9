"""EveryBatchSkipped: an epoch in which no sample could be trained ends the run with one line."""

from __future__ import annotations

import lightning as L


class EveryBatchSkipped(L.Callback):
    """Counts the samples each training epoch trains on; none at all (every medium unreadable, every
    sample over budget) raises ValueError naming the skip counts, instead of a run that learns nothing."""

    def __init__(self) -> None:
        self.samples = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch.get("input_ids") is not None:
            self.samples += len(batch["records"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.samples or not trainer.num_training_batches:
            return
        skips = getattr(trainer.datamodule, "runtime_skips", None) or {}
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(skips.items())) or "none counted"
        raise ValueError(
            f"epoch {trainer.current_epoch}: every training sample was skipped while loading ({counts}); "
            "check the media paths (python -m m2se.data.inspect FILE --decode)"
        )

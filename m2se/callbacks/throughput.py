"""Samples/s and tokens/s through Lightning's ThroughputMonitor, for the project's batch dicts."""

from __future__ import annotations

from lightning.pytorch.callbacks import ThroughputMonitor


def _samples(batch: dict) -> int:
    return len(batch["records"])


def _tokens(batch: dict) -> int:
    return 0 if batch["attention_mask"] is None else int(batch["attention_mask"].sum())


class TrainingThroughput(ThroughputMonitor):
    """Lightning's ThroughputMonitor for training only: its validation rows carry the validation batch
    count as their step, which scrambles the step column of metrics.csv (and repeats after a resume)."""

    def on_validation_batch_end(self, *args, **kwargs) -> None:
        pass

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # A batch whose every sample was skipped (unreadable media) has no throughput; Lightning's
        # monitor would refuse a window with fewer samples than batches.
        if batch.get("input_ids") is not None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def throughput_monitor(window_size: int = 50) -> ThroughputMonitor:
    """Lightning's ThroughputMonitor on our batches: ``train/samples_per_sec``, ``train/items_per_sec`` (tokens)."""
    return TrainingThroughput(batch_size_fn=_samples, length_fn=_tokens, window_size=window_size)

"""The DataModule's loaders: a resumable training loader and fixed, rank-sharded evaluation batches."""

from __future__ import annotations

import torch.distributed as dist
from torch.utils.data import DataLoader

from m2se.data.records import Record


class ResumableLoader(DataLoader):
    """A training loader whose state is its batch sampler's, so Lightning saves and restores it.

    A resumed run continues the epoch where it stopped, with the mixture it had (prefetched but
    untrained batches are skipped too, as the sampler counts what it has drawn).
    """

    def state_dict(self) -> dict:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.load_state_dict(state)


class ShardedBatches:
    """Fixed batches (lists of indices), each rank taking every world-size-th one when iterated."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches

    def _shard(self) -> list[list[int]]:
        if dist.is_available() and dist.is_initialized():
            return self.batches[dist.get_rank() :: dist.get_world_size()]
        return self.batches

    def __iter__(self):
        return iter(self._shard())

    def __len__(self) -> int:
        return len(self._shard())


def grouped(records: list[Record], tasks, batch_size: int, limit: int | None) -> ShardedBatches:
    """Batches of one task each, in record order, at most ``limit`` records per task, sharded by rank."""
    by_task: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        if tasks is None or record.task in tasks:
            by_task.setdefault(record.task, []).append(i)
    return ShardedBatches(
        [
            indices[start : start + batch_size]
            for indices in (v[:limit] for v in by_task.values())
            for start in range(0, len(indices), batch_size)
        ]
    )

"""The DataModule's loaders: a resumable training loader and fixed, rank-sharded evaluation batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch.distributed as dist
from torch.utils.data import DataLoader

from m2se.data.records import Record


class TrainingLoader(DataLoader):
    """The training loader: tells its ``TaskWeightedBatchSampler`` each batch it hands to the training loop.

    That count, not what the sampler has drawn (workers prefetch ahead), is the position a checkpoint
    saves (through the DataModule's state). The underlying iterator starts at the first ``next()``,
    not at ``iter()``: Lightning calls ``iter()`` before it sets the epoch and runs the epoch-start
    hooks, and with workers an eager start would draw the first batches with the previous epoch's
    seed and mixture.
    """

    def __iter__(self) -> Iterator:
        return _Counted(self)

    # The position itself lives in the DataModule's state, which Lightning restores before it builds
    # or measures any loader; these only tell Lightning that this loader resumes mid-epoch.
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class _Counted:
    def __init__(self, loader: TrainingLoader) -> None:
        self._loader, self._iterator = loader, None

    def __iter__(self) -> _Counted:
        return self

    def __next__(self):
        if self._iterator is None:
            self._iterator = DataLoader.__iter__(self._loader)
        batch = next(self._iterator)
        self._loader.batch_sampler.consume()
        return batch


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


def grouped(
    records: list[Record], tasks, batch_size: int, limit: int | None, lengths: Sequence[int] | None = None
) -> ShardedBatches:
    """Batches of one task each, at most ``limit`` records per task, sharded by rank. In record order,
    or with ``lengths`` (tokens per record) longest first within each task, so that a batch pads its
    prompts to a length close to each of theirs (generation's left padding) and the largest batch
    comes first."""
    by_task: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        if tasks is None or record.task in tasks:
            by_task.setdefault(record.task, []).append(i)
    kept = (v[:limit] for v in by_task.values())
    if lengths is not None:
        kept = (sorted(v, key=lambda i: -lengths[i]) for v in kept)
    return ShardedBatches(
        [
            indices[start : start + batch_size]
            for indices in kept
            for start in range(0, len(indices), batch_size)
        ]
    )

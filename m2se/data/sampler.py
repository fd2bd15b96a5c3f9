"""Single-task batches drawn by a named, switchable task mixture; deterministic, DDP-sharded, resumable."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch.distributed as dist
from torch.utils.data import Sampler


class TaskWeightedBatchSampler(Sampler[list[int]]):
    """Yields batches of dataset indices, each from one task; pass it as a DataLoader's `batch_sampler`.

    Weights: a mixture maps task -> weight. Numbers are used as given (relative, any positive scale).
    A mixture whose weights are all None is size-based: weight = n_task ** (1 / temperature), with
    temperature 1 (proportional to size) when not given; a large temperature tends to uniform.
    `temperature` affects only such mixtures; mixing numbers and None in one mixture is an error.

    Each step draws a task from the active mixture, then takes the task's next `batch_size` indices
    from a shuffled pass over its records; a pass is used up before the next (freshly shuffled) one
    starts, so small tasks repeat and nothing is skipped. Batches are always full: a batch at the end
    of a pass is completed from the next pass, whose order is nudged so that no index repeats within
    a step (unless the task has fewer than batch_size x num_replicas records).

    Epoch length: `num_batches`, else sum of the sizes of the tasks of the mixture active when the
    epoch starts / (batch_size x num_replicas), rounded up (down with `drop_last`).

    DDP: every rank draws the same task at each step (same seed) and takes its own slice of a
    batch_size x num_replicas chunk, so ranks never share a sample within a step. Run Lightning with
    `use_distributed_sampler=False`, since this sampler shards itself; call `set_mixture` on all ranks.

    `set_mixture` takes effect from the next batch the running iterator draws. A DataLoader with
    workers prefetches `num_workers x prefetch_factor` batches, which were drawn under the old mixture;
    likewise `state_dict` counts drawn batches, prefetched ones included.
    """

    def __init__(
        self,
        task_indices: Mapping[str, Sequence[int]],
        batch_size: int,
        mixtures: Mapping[str, Mapping[str, float | None]],
        mixture: str,
        *,
        temperature: float | None = None,
        seed: int = 42,
        num_batches: int | None = None,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        counts = {"batch_size": batch_size, "num_batches": num_batches, "num_replicas": num_replicas}
        for name, value in {**counts, "temperature": temperature}.items():
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if num_replicas is not None and rank is not None and not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside num_replicas={num_replicas}")
        self._num_replicas, self._rank = num_replicas, rank
        self.task_indices = {task: list(indices) for task, indices in task_indices.items()}
        self.batch_size, self.seed, self.num_batches = batch_size, seed, num_batches
        self.drop_last = drop_last
        self.mixtures = {name: self._resolve(name, tasks, temperature) for name, tasks in mixtures.items()}
        self._check_mixture(mixture)
        self._active, self.epoch, self._yielded = mixture, 0, 0
        self._switches: list[tuple[int, str]] = [(0, mixture)]  # (first batch, mixture) this epoch
        self._resume_pending = False
        self.batches_per_task: Counter[str] = Counter()
        self.batches_drawn = 0  # over all epochs
        self._scheduled: tuple[int, str] | None = None

    def _resolve(
        self, name: str, weights: Mapping[str, float | None], temperature: float | None
    ) -> dict[str, float]:
        if not weights:
            raise ValueError(f"mixture '{name}' has no tasks")
        for task in weights:
            if not self.task_indices.get(task):
                raise ValueError(f"mixture '{name}': task '{task}' has no records")
        given = [w is not None for w in weights.values()]
        if any(given) and not all(given):
            raise ValueError(f"mixture '{name}': give every task a weight, or none (size-based)")
        if not any(given):
            exponent = 1.0 / (temperature or 1.0)
            return {task: len(self.task_indices[task]) ** exponent for task in weights}
        for task, weight in weights.items():
            if not weight > 0:
                raise ValueError(f"mixture '{name}': task '{task}' has non-positive weight {weight}")
        return {task: float(weight) for task, weight in weights.items()}

    # Looked up when used, not when built: a DataModule is often set up before the process group exists.
    @property
    def num_replicas(self) -> int:
        if self._num_replicas is not None:
            return self._num_replicas
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @property
    def rank(self) -> int:
        if self._rank is not None:
            return self._rank
        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    def _check_mixture(self, name: str) -> None:
        if name not in self.mixtures:
            raise ValueError(f"unknown mixture '{name}' (expected one of {sorted(self.mixtures)})")

    @property
    def mixture(self) -> str:
        return self._active

    def set_mixture(self, name: str) -> None:
        self._check_mixture(name)
        self._active = name
        # Recorded so that a resumed epoch replays the batches before the switch under the old mixture.
        if self._switches[-1][0] == self._yielded:
            self._switches[-1] = (self._yielded, name)
        else:
            self._switches.append((self._yielded, name))

    def schedule_mixture(self, name: str, after_batches: int) -> None:
        """Switch to ``name`` once ``after_batches`` batches have been drawn in all (epochs included).

        Unlike ``set_mixture`` from a training hook, this is exact when a DataLoader prefetches: the
        batch drawn at that count is the first of the new mixture.
        """
        self._check_mixture(name)
        self._scheduled = (after_batches, name)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:  # a resumed epoch is over once the trainer moves on to another
            self._resume_pending = False
        self.epoch = epoch

    def _length(self, mixture: str) -> int:
        if self.num_batches is not None:
            return self.num_batches
        records = sum(len(self.task_indices[task]) for task in self.mixtures[mixture])
        rounding = math.floor if self.drop_last else math.ceil
        return max(1, rounding(records / (self.batch_size * self.num_replicas)))

    def __len__(self) -> int:
        return self._length(self._active)

    def _mixture_at(self, step: int) -> str:
        return next(name for first, name in reversed(self._switches) if first <= step)

    def __iter__(self) -> Iterator[list[int]]:
        resuming = self._resume_pending and self._yielded < self._length(self._switches[0][1])
        skip = self._yielded if resuming else 0
        if not resuming:
            self._yielded, self._switches = 0, [(0, self._active)]
        self._resume_pending = False
        # String seeds hash deterministically (unlike hash()), and the per-task streams being
        # independent of the draws keeps every task's order fixed whatever the mixture timeline.
        chooser = random.Random(f"{self.seed}/{self.epoch}")
        streams: dict[str, _TaskStream] = {}
        chunk_size = self.batch_size * self.num_replicas
        for step in range(self._length(self._switches[0][1])):
            if step >= skip and self._scheduled and self.batches_drawn >= self._scheduled[0]:
                name, self._scheduled = self._scheduled[1], None
                self.set_mixture(name)
            weights = self.mixtures[self._mixture_at(step)]
            task = chooser.choices(list(weights), weights=list(weights.values()))[0]
            if task not in streams:
                streams[task] = _TaskStream(self.task_indices[task], f"{self.seed}/{self.epoch}/{task}")
            chunk = streams[task].take(chunk_size)
            if step < skip:
                continue
            self._yielded = step + 1  # counted before yielding: a checkpoint taken now includes this batch
            self.batches_drawn += 1
            self.batches_per_task[task] += 1
            yield chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        return {
            "mixture": self._active,
            "epoch": self.epoch,
            "batches_yielded": self._yielded,
            "mixture_switches": [list(switch) for switch in self._switches],
            "batches_per_task": dict(self.batches_per_task),
            "batches_drawn": self.batches_drawn,
            "scheduled": list(self._scheduled) if self._scheduled else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """The next iteration skips the batches already yielded in the saved epoch and continues it."""
        switches = [(int(first), str(name)) for first, name in state["mixture_switches"]]
        for name in [state["mixture"], *(name for _, name in switches)]:
            self._check_mixture(name)
        self._active, self.epoch, self._yielded = state["mixture"], state["epoch"], state["batches_yielded"]
        self._switches = switches
        self.batches_per_task = Counter(state["batches_per_task"])
        self.batches_drawn = state.get("batches_drawn", 0)
        scheduled = state.get("scheduled")
        self._scheduled = (int(scheduled[0]), str(scheduled[1])) if scheduled else None
        self._resume_pending = True


class _TaskStream:
    """One task's indices as an endless run of shuffled passes."""

    def __init__(self, indices: list[int], seed: str) -> None:
        self._indices, self._rng = indices, random.Random(seed)
        self._order, self._position = self._shuffled(), 0

    def _shuffled(self) -> list[int]:
        order = list(self._indices)
        self._rng.shuffle(order)
        return order

    def take(self, count: int) -> list[int]:
        taken = self._order[self._position : self._position + count]
        self._position += len(taken)
        while len(taken) < count:
            self._order = self._shuffled()
            self._position = min(count - len(taken), len(self._order))
            _defer_repeats(self._order, set(taken), self._position)
            taken += self._order[: self._position]
        return taken


def _defer_repeats(order: list[int], taken: set[int], head: int) -> None:
    """Swap indices already in `taken` out of `order[:head]`, so a chunk wrapping into a new pass has none twice."""
    spare = (j for j in range(head, len(order)) if order[j] not in taken)
    for i in range(head):
        if order[i] in taken:
            j = next(spare, None)
            if j is None:  # fewer records than a chunk: repeats within a step are unavoidable
                return
            order[i], order[j] = order[j], order[i]

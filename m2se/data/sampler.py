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

    Mixture timeline: which mixture draws batch g (g counts trained batches over all epochs) is a
    function of g: `schedule_mixture` puts a switch at a batch count or at an epoch's first batch,
    `set_mixture` at the next batch drawn. Loaders draw ahead of training (workers prefetch), so a
    switch keyed to a batch count is exact where a hook calling `set_mixture` would lag.

    Resume: `position` counts the batches of the epoch that training has received, as reported by
    `consume()` (the training loader calls it for every batch it hands out, so prefetched batches
    never count). `state_dict()` holds position and timeline; after `load_state_dict` the next
    iteration replays the epoch's draws up to the position and yields the rest, so a resumed run
    trains exactly the batches an uninterrupted one would.

    DDP: every rank draws the same task at each step (same seed) and takes its own slice of a
    batch_size x num_replicas chunk, so ranks never share a sample within a step. Run Lightning with
    `use_distributed_sampler=False`, since this sampler shards itself; call `set_mixture` on all ranks.
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
        self.epoch = 0
        self.position = 0  # batches of this epoch that training has received (see consume)
        self.epoch_start = 0  # trained batches before this epoch
        self._timeline: list[tuple[int, str]] = [(0, mixture)]  # (first batch g, mixture), sorted
        self._at_epochs: list[tuple[int, str]] = []  # switches waiting for an epoch to start
        self._next_draw = 0  # g of the next batch the running iterator draws
        self._tasks: list[str] = []  # the task of each batch drawn this epoch
        self.batches_per_task: Counter[str] = Counter()  # trained batches, over all epochs

    def _resolve(
        self, name: str, weights: Mapping[str, float | None], temperature: float | None
    ) -> dict[str, float]:
        if not weights:
            raise ValueError(f"mixture '{name}' has no tasks")
        for task in weights:
            if not self.task_indices.get(task):
                # Keys read "mixture:task" (m2se.data.datamodule): a task can have records, but none in
                # the files this mixture may draw from.
                shown = task.split(":", 1)[-1]
                raise ValueError(
                    f"mixture '{name}': task '{shown}' has no records in the files this mixture draws from"
                    " (data.sources[].mixtures scopes files to mixtures)"
                )
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

    # -- the mixture timeline ---------------------------------------------------------------------
    def mixture_at(self, batch: int) -> str:
        """The mixture that draws trained batch number ``batch`` (counted over all epochs)."""
        return next(name for first, name in reversed(self._timeline) if first <= batch)

    @property
    def mixture(self) -> str:
        """The active mixture: the one that draws the next batch training receives."""
        return self.mixture_at(self.epoch_start + self.position)

    def _switch_at(self, batch: int, name: str) -> None:
        self._timeline = [(g, n) for g, n in self._timeline if g != batch] + [(batch, name)]
        self._timeline.sort(key=lambda entry: entry[0])

    def set_mixture(self, name: str) -> None:
        """Draw from ``name`` from the next batch drawn on (a running loader's prefetch is not redrawn)."""
        self._check_mixture(name)
        self._switch_at(max(self._next_draw, self.epoch_start + self.position), name)

    def schedule_mixture(
        self, name: str, after_batches: int | None = None, at_epoch: int | None = None
    ) -> None:
        """Switch to ``name`` once ``after_batches`` batches have trained (epochs included), or at the
        first batch of epoch ``at_epoch``; exact whatever the loader prefetches."""
        self._check_mixture(name)
        if (after_batches is None) == (at_epoch is None):
            raise ValueError("schedule_mixture needs exactly one of after_batches and at_epoch")
        if after_batches is not None:
            self._switch_at(after_batches, name)
        elif at_epoch <= self.epoch and self.position == 0:
            self._switch_at(self.epoch_start, name)
        else:
            self._at_epochs.append((at_epoch, name))

    # -- epochs -----------------------------------------------------------------------------------
    @property
    def sampler(self) -> TaskWeightedBatchSampler:
        # Lightning calls set_epoch on ``loader.sampler`` and ``loader.batch_sampler.sampler``, never on
        # the batch sampler itself: without this, every epoch would replay epoch 0's order.
        return self

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (Lightning calls this before each epoch); the same epoch again is a no-op,
        so a resumed epoch continues where it stopped."""
        if epoch != self.epoch:
            self._start_epoch(epoch)

    def _start_epoch(self, epoch: int) -> None:
        self.epoch_start += self.position
        self.epoch, self.position, self._next_draw, self._tasks = epoch, 0, self.epoch_start, []
        due = [entry for entry in self._at_epochs if entry[0] <= epoch]
        for _, name in due:
            self._switch_at(self.epoch_start, name)
        self._at_epochs = [entry for entry in self._at_epochs if entry[0] > epoch]

    def _length(self, mixture: str) -> int:
        if self.num_batches is not None:
            return self.num_batches
        records = sum(len(self.task_indices[task]) for task in self.mixtures[mixture])
        rounding = math.floor if self.drop_last else math.ceil
        return max(1, rounding(records / (self.batch_size * self.num_replicas)))

    def _epoch_length(self) -> int:
        return self._length(self.mixture_at(self.epoch_start))

    def __len__(self) -> int:
        """This epoch's length; once it is fully trained, the next epoch's (a scheduled switch included)."""
        length = self._epoch_length()
        if self.position < length:
            return length
        start = self.epoch_start + self.position
        upcoming = [name for epoch, name in self._at_epochs if epoch <= self.epoch + 1]
        return self._length(upcoming[-1] if upcoming else self.mixture_at(start))

    def __iter__(self) -> Iterator[list[int]]:
        if self.position >= self._epoch_length():  # fully trained: a fresh pass (set_epoch moves on)
            self._start_epoch(self.epoch)
        start, self._next_draw = self.position, self.epoch_start + self.position
        # String seeds hash deterministically (unlike hash()), and the per-task streams being
        # independent of the draws keeps every task's order fixed whatever the mixture timeline.
        chooser = random.Random(f"{self.seed}/{self.epoch}")
        streams: dict[str, _TaskStream] = {}
        chunk_size = self.batch_size * self.num_replicas
        self._tasks = []
        for step in range(self._epoch_length()):
            weights = self.mixtures[self.mixture_at(self.epoch_start + step)]
            task = chooser.choices(list(weights), weights=list(weights.values()))[0]
            if task not in streams:
                streams[task] = _TaskStream(self.task_indices[task], f"{self.seed}/{self.epoch}/{task}")
            chunk = streams[task].take(chunk_size)
            self._tasks.append(task)
            if step < start:  # replayed: trained before the resume
                continue
            self._next_draw = self.epoch_start + step + 1
            yield chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def consume(self) -> None:
        """Training received the next batch of this epoch: what ``position`` and ``state_dict`` count."""
        if self.position < len(self._tasks):
            self.batches_per_task[self._tasks[self.position]] += 1
        self.position += 1

    # -- resume -----------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """What fixes the batch sequence; a state resumes only into a sampler with the same settings."""
        return {
            "batch_size": self.batch_size,
            "seed": self.seed,
            "num_batches": self.num_batches,
            "drop_last": self.drop_last,
            "mixtures": self.mixtures,
            "task_sizes": {task: len(indices) for task, indices in self.task_indices.items()},
            "first_mixture": self._timeline[0][1] if self._timeline[0][0] == 0 else None,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings(),
            "epoch": self.epoch,
            "position": self.position,
            "epoch_start": self.epoch_start,
            "timeline": [list(entry) for entry in self._timeline],
            "at_epochs": [list(entry) for entry in self._at_epochs],
            "batches_per_task": dict(self.batches_per_task),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved state: the next iteration yields the epoch's batches after ``position``.

        Raises ValueError naming what differs when the state comes from a sampler with other settings
        (batch size, seed, mixtures, records per task, starting mixture): it would not resume that run.
        """
        saved, mine = state.get("settings"), self.settings()
        if saved is not None and saved != mine:
            differ = [f"{k} {saved.get(k)!r} -> {mine[k]!r}" for k in mine if saved.get(k) != mine[k]]
            raise ValueError(
                "resume: the data settings differ from the interrupted run's ("
                + "; ".join(d if len(d) < 200 else d[:200] + "..." for d in differ)
                + "); resume with the data, stage and batch settings that run had"
            )
        timeline = [(int(g), str(name)) for g, name in state["timeline"]]
        at_epochs = [(int(epoch), str(name)) for epoch, name in state["at_epochs"]]
        for _, name in timeline + at_epochs:
            self._check_mixture(name)
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.epoch_start = int(state["epoch_start"])
        counts = [
            self.epoch,
            self.position,
            self.epoch_start,
            *(g for g, _ in timeline),
            *(e for e, _ in at_epochs),
        ]
        if min(counts, default=0) < 0 or any(n < 0 for n in Counter(state["batches_per_task"]).values()):
            raise ValueError(
                "resume: the sampler state holds negative positions (not a state this run wrote)"
            )
        self._timeline, self._at_epochs = timeline, at_epochs
        self._next_draw, self._tasks = self.epoch_start + self.position, []
        self.batches_per_task = Counter(state["batches_per_task"])


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

"""MultiTaskDataModule: EMT sources → task-weighted single-task batches, validation and test loaders."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader

from m2se.data.cache import FrameCache
from m2se.data.dataset import Collator, EncodedDataset
from m2se.data.loaders import TrainingLoader, grouped
from m2se.data.mixtures import mixture_weights
from m2se.data.processor import M2SEProcessor
from m2se.data.records import LoadResult, Record, RecordError, load_records
from m2se.data.report import DataReport, token_lengths
from m2se.data.sampler import TaskWeightedBatchSampler
from m2se.data.settings import check_choices, check_counts
from m2se.data.video import MediaLoader


@dataclass(frozen=True)
class Source:
    """One EMT file. ``task`` overrides inference; ``mixtures`` limits which mixtures draw from it."""

    path: str
    media_root: str | None = None
    task: str | None = None
    mixtures: Sequence[str] | None = None
    text_only: bool = False


def _sources(items: Sequence[Source | Mapping]) -> list[Source]:
    return [s if isinstance(s, Source) else Source(**s) for s in items or ()]


class MultiTaskDataModule(L.LightningDataModule):
    """Training batches come from ``TaskWeightedBatchSampler`` over the active mixture.

    ``mixtures`` maps a name to ``{task: weight}`` (``mixture_weights``: null weights are size-based
    with ``temperature``, 0 leaves the task out). ``set_mixture`` switches the running sampler without rebuilding the loader.
    Validation is ``val_sources`` or a random ``val_fraction`` of every training file; ``test_sources``
    maps a task to its test file. ``data_dir`` is only a handle for config interpolation.
    ``frame_cache`` is a folder built by ``python -m m2se.data.cache`` (see FrameCache). Media paths
    must stay inside their source's media root unless ``allow_media_outside_root``.
    """

    def __init__(
        self,
        sources: Sequence[Source | Mapping],
        mixtures: Mapping[str, Mapping[str, float | None] | Sequence[Mapping[str, Any]]],
        processor: M2SEProcessor,
        mixture: str = "first",
        temperature: float | None = None,
        val_fraction: float = 0.01,
        val_sources: Sequence[Source | Mapping] | None = None,
        val_max_per_task: int | None = None,
        test_sources: Mapping[str, Source | Mapping] | None = None,
        num_frames: int = 8,
        max_tiles: int = 12,
        use_thumbnail: bool = True,
        video_backend: Literal["auto", "decord", "pyav"] = "auto",
        video_resize: Literal["decoder", "pil"] = "decoder",
        batch_size: int = 1,
        num_batches: int | None = None,
        num_workers: int = 2,
        on_bad_record: Literal["raise", "skip"] = "raise",
        on_media_error: Literal["skip", "raise"] = "skip",
        seed: int = 42,
        data_dir: str | None = None,
        frame_cache: str | None = None,
        allow_media_outside_root: bool = False,
    ) -> None:
        super().__init__()
        # video_backend and video_resize: MediaLoader checks its own.
        check_choices({"on_bad_record": on_bad_record, "on_media_error": on_media_error})
        check_counts(num_frames=num_frames, max_tiles=max_tiles, batch_size=batch_size)
        check_counts(num_batches=num_batches, num_workers=num_workers, val_max_per_task=val_max_per_task)
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if mixture not in mixtures:
            raise ValueError(f"unknown mixture {mixture!r} (configured: {', '.join(mixtures)})")
        self.sources, self.val_sources = _sources(sources), _sources(val_sources)
        self.test_sources = {task: _sources([s])[0] for task, s in (test_sources or {}).items()}
        self.mixtures = {name: mixture_weights(name, entries) for name, entries in mixtures.items()}
        self.processor, self._mixture, self.temperature = processor, mixture, temperature
        self.val_fraction, self.val_max_per_task, self.batch_size = val_fraction, val_max_per_task, batch_size
        self.num_batches, self.num_workers, self.seed = num_batches, num_workers, seed
        self.on_bad_record, self.on_media_error = on_bad_record, on_media_error
        self.allow_media_outside_root = allow_media_outside_root
        self.media: MediaLoader | FrameCache = MediaLoader(
            num_frames,
            processor.tile_size,
            processor.image_tiles(max_tiles),
            use_thumbnail,
            video_backend,
            video_resize,
        )
        if frame_cache is not None:
            self.media = FrameCache(self.media, frame_cache)
            if self.media.unbuilt():
                rank_zero_warn(self.media.unbuilt())
        self.sampler: TaskWeightedBatchSampler | None = None
        self.runtime_skips: Counter = Counter()
        self.skips_by_task: dict[str | None, Counter] = {}  # the same, per task (evaluation's denominators)
        self.test_skipped: dict[str, Counter] = {}  # test records skipped at load, per task
        self.dropped: Counter = Counter()  # audio / feature placeholders left out (model.audio.missing: drop)
        self.report: DataReport | None = None
        self.test_records: dict[str, list[Record]] = {}
        self.missing_tests: list[str] = []
        self.truncated = 0

    # -- loading --------------------------------------------------------------------------------
    def _load(
        self, sources: list[Source], seen: set | None = None, empty_ok: bool = False
    ) -> tuple[list[tuple[Source, list[Record]]], LoadResult]:
        """Each source's records; duplicates are checked within every file, and against ``seen`` if given.

        A source left without records is a RecordError unless ``empty_ok`` (test files: evaluation says so).
        """
        total, per_source = LoadResult(), []
        for source in sources:
            result = load_records(
                source.path,
                source.media_root,
                source.task,
                self.on_bad_record == "skip",
                not source.text_only,
                seen if seen is not None else set(),
                self.allow_media_outside_root,
            )
            self._refuse_control_tokens(result)
            if not result.records and not empty_ok:
                raise RecordError.no_records(source.path, result.skipped)
            total.extend(result)
            per_source.append((source, result.records))
        return per_source, total

    def _refuse_control_tokens(self, result: LoadResult) -> None:
        kept = []
        for record in result.records:
            token = self.processor.control_token_in(record.query, record.response)
            if token is None:
                kept.append(record)
                continue
            err = RecordError(
                record.where, f"text contains the tokenizer's control token {token!r}", "control token"
            )
            if self.on_bad_record == "raise":
                raise err
            result.skipped[err.reason] += 1
            result.errors.append(str(err))
        result.records = kept

    def setup(self, stage: str | None = None) -> None:
        """Load and split the sources once, print the report; test files are required only to test.

        Testing alone (evaluation) loads only the test files: the training files need not exist.
        """
        if stage in ("test", "predict") and self.report is None:
            if not self.test_records or self.missing_tests:
                self._load_tests(required=True)
            return
        if self.report is None:
            # Training files may share records (EmoVerse's stages both draw MOSEI msa); a validation
            # file may not share any with them.
            per_source, loaded = self._load(self.sources)
            self._split(per_source)
            if self.val_sources:
                seen = {r.key for r in self.train_records}
                self.val_records = [r for _, rs in self._load(self.val_sources, seen)[0] for r in rs]
            self._load_tests(required=stage in ("test", "predict"))
            lengths = token_lengths(self.train_records, self.processor, self.media)
            self.report = DataReport.build(
                self.train_records,
                self.val_records,
                self.test_records,
                loaded,
                lengths,
                self.processor.max_length,
                self.processor.over_budget,
                self.missing_tests,
            )
            weights = ", ".join(
                f"{t} {w if w is not None else 'size'}" for t, w in self.mixtures[self._mixture].items()
            )
            rank_zero_info(f"{self.report.render()}\nactive mixture '{self._mixture}': {weights}")
            self.sampler = self._build_sampler()
        elif stage in ("test", "predict") and self.missing_tests:
            self._load_tests(required=True)

    def _split(self, per_source: list[tuple[Source, list[Record]]]) -> None:
        """Hold out a random ``val_fraction`` of every file (unless ``val_sources`` are given).

        A record that several files share is held out everywhere or nowhere: never trained on in one
        mixture and validated in another.
        """
        rng = random.Random(self.seed)
        self.train_records, self.val_records, self.scopes = [], [], []
        held_keys: set = set()
        trained_keys: set = set()
        for source, records in per_source:
            taken = held_keys | trained_keys
            fresh = [i for i, r in enumerate(records) if r.key not in taken]
            held = set()
            if not self.val_sources and self.val_fraction > 0 and len(fresh) > 1:
                held = set(rng.sample(fresh, max(1, round(len(fresh) * self.val_fraction))))
            for i, record in enumerate(records):
                if i in held:
                    self.val_records.append(record)
                    held_keys.add(record.key)
                elif record.key not in held_keys:
                    self.train_records.append(record)
                    self.scopes.append(source.mixtures)
                    trained_keys.add(record.key)

    def _load_tests(self, required: bool) -> None:
        # Training does not need the test files: missing ones are listed in the report instead.
        present = {t: s for t, s in self.test_sources.items() if required or Path(s.path).is_file()}
        self.missing_tests = sorted(set(self.test_sources) - set(present))
        self.test_records, self.test_skipped = {}, {}
        for task, source in present.items():
            loaded = self._load([source], set(), empty_ok=True)[1]
            self.test_records[task], self.test_skipped[task] = loaded.records, loaded.skipped

    def _build_sampler(self) -> TaskWeightedBatchSampler:
        # Sampler keys are "mixture:task" so that a mixture draws only from the files scoped to it.
        keyed: dict[str, list[int]] = {}
        for name, weights in self.mixtures.items():
            for index, (record, scope) in enumerate(zip(self.train_records, self.scopes, strict=True)):
                if record.task in weights and (scope is None or name in scope):
                    keyed.setdefault(f"{name}:{record.task}", []).append(index)
        mixtures = {
            name: {f"{name}:{t}": w for t, w in weights.items()} for name, weights in self.mixtures.items()
        }
        return TaskWeightedBatchSampler(
            keyed,
            self.batch_size,
            mixtures,
            self._mixture,
            temperature=self.temperature,
            seed=self.seed,
            num_batches=self.num_batches,
        )

    # -- mixture --------------------------------------------------------------------------------
    @property
    def mixture(self) -> str:
        return self.sampler.mixture if self.sampler else self._mixture

    def set_mixture(self, name: str) -> None:
        """Switch the active mixture; a running training loader draws from it from its next batch."""
        if name not in self.mixtures:
            raise ValueError(f"unknown mixture {name!r} (configured: {', '.join(self.mixtures)})")
        self._mixture = name
        if self.sampler is not None:
            self.sampler.set_mixture(name)

    def schedule_mixture(
        self, name: str, after_batches: int | None = None, at_epoch: int | None = None
    ) -> None:
        """Switch to ``name`` at an exact batch count or epoch, whatever the loaders prefetch (see the sampler)."""
        if name not in self.mixtures:
            raise ValueError(f"unknown mixture {name!r} (configured: {', '.join(self.mixtures)})")
        self.sampler.schedule_mixture(name, after_batches, at_epoch)

    # -- resume ---------------------------------------------------------------------------------
    # The sampler's position and mixture timeline travel in the checkpoint as the DataModule's state:
    # Lightning restores it before it builds any loader or asks their length, so the resumed epoch
    # has the interrupted one's length and continues after its last trained batch.
    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()} if self.sampler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "sampler" in state:
            self.sampler.load_state_dict(state["sampler"])

    # -- loaders --------------------------------------------------------------------------------
    def _loader(
        self, records: list[Record], batch_sampler, generation: bool = False, loader=DataLoader
    ) -> DataLoader:
        dataset = EncodedDataset(records, self.processor, self.media, self.on_media_error, generation)
        return loader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=self.num_workers,
            collate_fn=Collator(self.processor, "left" if generation else "right"),
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),  # uint8 tiles then go to the GPU asynchronously
            # Its own generator: starting an iterator then never draws from the global RNG, whose
            # stream (dropout) a resumed run must continue exactly.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_records, self.sampler, loader=TrainingLoader)

    def val_dataloader(self) -> DataLoader:
        """One loader over the tasks of the active mixture, in task-grouped batches."""
        active = self.mixtures[self.mixture]
        return self._loader(
            self.val_records, grouped(self.val_records, active, self.batch_size, self.val_max_per_task)
        )

    def test_dataloader(self) -> list[DataLoader]:
        """One generation loader (``question_loader``) per test task, in ``test_sources`` order."""
        return [self.question_loader(records) for records in self.test_records.values()]

    def question_loader(self, records: list[Record]) -> DataLoader:
        """Generation batches over ``records`` (evaluation's per test task, and predict.py's): one task
        per batch, left-padded prompts, batched by prompt length (longest first) to pad little."""
        lengths = token_lengths(records, self.processor, self.media, answers=False)
        batches = grouped(records, None, self.batch_size, None, lengths)
        return self._loader(records, batches, generation=True)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        self.truncated += batch.get("truncated", 0)
        for skip in batch.get("skipped", ()):
            if not self.runtime_skips[skip.reason]:
                rank_zero_warn(f"skipping {skip.where}: {skip.message} (further skips are counted)")
            self.runtime_skips[skip.reason] += 1
            self.skips_by_task.setdefault(batch.get("task"), Counter())[skip.reason] += 1
        for kind, where in batch.get("dropped", {}).items():
            if not self.dropped[kind]:
                rank_zero_warn(
                    f"{where[0]}: no {kind} to place, placeholder dropped (model.audio.missing=drop; "
                    "further drops are counted)"
                )
            self.dropped[kind] += len(where)
        return batch

    def teardown(self, stage: str) -> None:
        stage = getattr(stage, "value", stage)  # Lightning passes its TrainerFn enum
        if self.runtime_skips or self.truncated:
            counts = ", ".join(f"{reason} {n}" for reason, n in self.runtime_skips.most_common()) or "none"
            rank_zero_info(f"samples skipped while loading ({stage}): {counts}; truncated: {self.truncated}")
        if self.dropped:
            counts = ", ".join(f"{kind} {n}" for kind, n in self.dropped.most_common())
            rank_zero_info(f"placeholders dropped for want of sound or feature files ({stage}): {counts}")

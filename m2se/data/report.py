"""The table a DataModule prints at setup: records per split and task, skips, budget, token lengths."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from tqdm import tqdm

from m2se.data.processor import M2SEProcessor
from m2se.data.records import WHERE_DATA, LoadResult, Record
from m2se.data.tiles import count_tiles
from m2se.data.video import IMAGE_ERRORS, MediaLoader


def _image_tiles(path, media: MediaLoader) -> int:
    try:
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
    except IMAGE_ERRORS:
        return 1  # missing, unreadable or a decompression bomb: the loader will skip it and say why
    return count_tiles(height, width, media.tile_size, media.max_tiles, media.use_thumbnail)


def token_lengths(
    records: list[Record], processor: M2SEProcessor, media: MediaLoader, answers: bool = True
) -> list[int]:
    """Tokens (visual + text) of each record as the processor would encode it, without decoding media;
    ``answers=False``: of its generation prompt (no answer)."""
    return [
        processor.count_tokens(
            r.query,
            r.response if answers else None,
            image_tiles=[_image_tiles(p, media) for p in r.images],
            video_frames=[media.num_frames] * len(r.videos),
            **processor.placeholders(r.task, list(r.features)),
        )
        for r in tqdm(records, desc="counting tokens", disable=len(records) < 2000, file=sys.stderr)
    ]


@dataclass
class DataReport:
    """Counts per task and split, skips by reason, and training token lengths against the budget."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> split -> records
    skipped: Counter = field(default_factory=Counter)
    lengths: dict[str, list[int]] = field(default_factory=dict)  # task -> training lengths
    max_length: int | None = None
    over_budget: str = "truncate"
    missing_tests: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        train,
        val,
        test: dict[str, list[Record]],
        loaded: LoadResult,
        lengths: list[int],
        max_length: int | None,
        over_budget: str,
        missing_tests: list[str] = (),
    ) -> DataReport:
        report = cls(
            skipped=Counter(loaded.skipped),
            max_length=max_length,
            over_budget=over_budget,
            missing_tests=list(missing_tests),
        )
        splits = {"train": train, "val": val, "test": [r for rs in test.values() for r in rs]}
        for split, records in splits.items():
            for record in records:
                report.counts.setdefault(record.task, Counter())[split] += 1
        for record, length in zip(train, lengths, strict=True):
            report.lengths.setdefault(record.task, []).append(length)
        return report

    def over(self, task: str) -> int:
        if self.max_length is None:
            return 0
        return sum(length > self.max_length for length in self.lengths.get(task, ()))

    def render(self) -> str:
        width = max([6, *(len(task) + 1 for task in self.counts)])  # emotion_predict is long
        head = (
            f"{'task':<{width}}{'train':>8}{'val':>7}{'test':>7}   tokens p50 / p90 / p99 / max   over budget"
        )
        lines = [head, "-" * len(head)]
        for task, counts in self.counts.items():
            lengths = self.lengths.get(task)
            if lengths:
                p50, p90, p99 = np.percentile(lengths, [50, 90, 99]).round().astype(int)
                stats = f"{p50:>6} / {p90:>5} / {p99:>5} / {max(lengths):>5}"
            else:
                stats = f"{'-':>6}   {'':>5}   {'':>5}   {'':>5}"
            lines.append(
                f"{task:<{width}}{counts['train']:>8}{counts['val']:>7}{counts['test']:>7}   {stats}   {self.over(task):>11}"
            )
        if self.max_length is not None:
            verb = {"truncate": "truncated", "skip": "skipped"}.get(self.over_budget, self.over_budget)
            lines.append(f"budget: {self.max_length} tokens per sample; over-budget samples are {verb}")
        if self.missing_tests:
            missing = ", ".join(self.missing_tests)
            lines.append(f"test files not found (needed only to test): {missing} {WHERE_DATA}")
        if self.skipped:
            lines.append("skipped at load: " + ", ".join(f"{k} {v}" for k, v in self.skipped.most_common()))
        return "\n".join(lines)

"""Records → processed samples, and the collate that turns them into single-task batches.

A record whose media are missing or corrupt, or that cannot fit the token budget, becomes a
``Skip``; the collate carries skips in ``batch["skipped"]`` so that the main process counts them
(DataLoader workers cannot share a counter). Audio and feature placeholders that a record lacked
(``model.audio.missing: drop``) are counted the same way in ``batch["dropped"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.data import Dataset

from m2se.data.audio import AudioLoader, NoAudioError
from m2se.data.media_errors import MediaError
from m2se.data.processor import EncodedSample, M2SEProcessor, OverBudgetError
from m2se.data.records import Record
from m2se.data.video import MediaLoader


# Not frozen: Lightning's batch transfer rebuilds dataclasses field by field.
@dataclass
class Skip:
    where: str
    reason: str
    message: str


class EncodedDataset(Dataset):
    """Map-style dataset over records; ``generation=True`` encodes prompts without the answer."""

    def __init__(
        self,
        records: Sequence[Record],
        processor: M2SEProcessor,
        media: MediaLoader,  # or a FrameCache around one
        on_media_error: Literal["skip", "raise"] = "skip",
        generation: bool = False,
    ) -> None:
        self.records, self.processor, self.media = list(records), processor, media
        self.on_media_error, self.generation = on_media_error, generation
        self.sounds = AudioLoader(processor.audio, processor.sampling_rate)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Record, EncodedSample | Skip]:
        record = self.records[index]
        try:
            images, videos = self.media.load(record.images, record.videos)
            heard = self.sounds.load(record)
            response = None if self.generation else record.response
            sample = self.processor(
                record.query, response, images, videos, audio=heard.audio, features=heard.features
            )
            sample.dropped = heard.dropped
            return record, sample
        except NoAudioError as err:  # model.audio.missing: skip
            return record, Skip(record.where, f"no {err.kind}", str(err))
        except MediaError as err:
            if self.on_media_error == "raise":
                raise MediaError(f"{record.where}: {err}") from None
            return record, Skip(record.where, "media error", str(err))
        except OverBudgetError as err:
            return record, Skip(record.where, "over budget", str(err))


class Collator:
    """Pads encoded samples into a batch with ``task``, ``records`` and ``skipped`` beside the tensors.

    A batch whose every sample was skipped has ``input_ids`` None; the training step passes over it.
    """

    def __init__(self, processor: M2SEProcessor, padding_side: Literal["right", "left"] = "right") -> None:
        self.processor, self.padding_side = processor, padding_side

    def __call__(self, items: list[tuple[Record, EncodedSample | Skip]]) -> dict:
        kept = [(r, s) for r, s in items if not isinstance(s, Skip)]
        skipped = [s for _, s in items if isinstance(s, Skip)]
        batch = {"input_ids": None, "labels": None, "attention_mask": None, "pixel_values": None}
        if kept:
            batch = self.processor.collate([s for _, s in kept], padding_side=self.padding_side)
        tasks = sorted({r.task for r, _ in items})
        batch.update(
            task=tasks[0] if len(tasks) == 1 else None,
            tasks=[r.task for r, _ in kept],
            records=[r for r, _ in kept],
            skipped=skipped,
            truncated=sum(s.truncated for _, s in kept),
            truncated_where=[r.where for r, s in kept if s.truncated],
            dropped={
                k: [r.where for r, s in kept if k in s.dropped]
                for k in {k for _, s in kept for k in s.dropped}
            },
        )
        return batch


def prompts_of(batch: dict, pad_token_id: int) -> dict:
    """A right-padded training batch → the same samples as left-padded prompts (answers cut off).

    Validation reuses its loss batches for generation this way; pixel values, audio and feature values
    are unchanged because every placeholder sits in the prompt (their masks move with the tokens).
    """
    lengths = []
    for labels, mask in zip(batch["labels"], batch["attention_mask"], strict=True):
        length = int(mask.sum())
        answer = (labels[:length] != -100).nonzero()
        lengths.append(int(answer[0]) if len(answer) else length)
    width = max(lengths)

    def left(rows: torch.Tensor, fill) -> torch.Tensor:
        out = rows.new_full((len(rows), width), fill)
        for row, length in enumerate(lengths):
            out[row, width - length :] = rows[row, :length]
        return out

    prompts = {
        "input_ids": left(batch["input_ids"], pad_token_id),
        "attention_mask": left(batch["attention_mask"], 0),
        "labels": None,
    }
    if batch.get("audio_mask") is not None:
        prompts["audio_mask"] = left(batch["audio_mask"], False)
    if batch.get("feature_masks"):
        prompts["feature_masks"] = {v: left(m, False) for v, m in batch["feature_masks"].items()}
    return {**batch, **prompts}

"""The data half of the backbone seam: what a family's ``vision`` tells the processor, and loading its files.

A family (``m2se.data.internvl``, ``m2se.data.qwen_vl``) builds an ``M2SEProcessor`` around its
``Vision``: how a picture is written into a prompt (text before it, placeholder ids) and how a sample's
tiles become the model's visual inputs. The processor, the DataModule and the module only ever speak
to this protocol; the model config (``model.processor``) picks the family.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from transformers import AutoTokenizer

from m2se.files import first_line


class Vision(Protocol):
    """How a backbone family writes pictures into a prompt and into the model's keyword inputs."""

    tile_size: int  # media are read as square tiles of this side (``MediaLoader``)
    max_image_tiles: int | None  # the most tiles per image the family takes (None: ``data.max_tiles``)
    visual_token_ids: tuple[int, ...]  # the ids the model overwrites with visual features
    input_names: tuple[str, ...]  # the model's visual keyword inputs, as a batch carries them
    pixel_names: tuple[str, ...]  # those of ``input_names`` that hold pixels (uint8 until ``normalise``)

    def pictures(
        self, image_tiles: Sequence[int], video_frames: Sequence[int]
    ) -> list[tuple[str, list[int]]]:
        """(text before it, placeholder ids) per picture in prompt order: images, then videos."""

    def inputs(
        self, images: Sequence[np.ndarray], videos: Sequence[np.ndarray], normalise: bool
    ) -> dict[str, torch.Tensor]:
        """One sample's visual inputs from uint8 (T, H, W, 3) tiles per image and frames per video, keyed
        by ``input_names``; each concatenates along dim 0 across a batch. ``normalise``: pixels as the
        model's float32, else uint8 for ``normalise`` to convert later (on the device)."""

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """A uint8 pixel input (any of ``pixel_names``) → the model's float32, on its device."""

    def token_inputs(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inputs read off a batch's (B, L) token ids (positions of the pictures), keyed by ``input_names``."""


def load_pretrained(path: str | Path, kind=AutoTokenizer):
    """``kind.from_pretrained(path)`` (a tokenizer or a config) with one-line errors naming ``path``:
    OSError when there is no model, ValueError when its files are malformed or it has no tokenizer."""
    try:
        loaded = kind.from_pretrained(path)
    except OSError:
        raise OSError(
            f"{path}: no model there (a local model directory or a cached hub id is needed; "
            "experiment=demo builds its tiny model on first use)"
        ) from None
    except Exception as err:  # transformers and huggingface_hub raise many types on a bad config.json
        raise ValueError(f"{path}: not a readable model directory ({first_line(err)})") from None
    # Without tokenizer files transformers builds an empty tokenizer (one token) and says nothing.
    if hasattr(loaded, "get_vocab") and len(loaded) < 2:
        raise ValueError(f"{path}: no tokenizer there (tokenizer.json / tokenizer_config.json are missing)")
    return loaded


def count_visual(ids: Sequence[int] | torch.Tensor, vision: Vision) -> int:
    """How many of ``ids`` the model fills with visual features."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    return int(torch.isin(ids, torch.tensor(vision.visual_token_ids)).sum())

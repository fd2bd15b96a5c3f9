"""InternVL's half of the processor: how its prompts hold pictures and how its pixels are normalised.

The model half is ``m2se.model.internvl``; ``conf/model/*.yaml`` names both (``model.backbone``,
``model.processor``). Everything InternVL-specific on the data side is here: the image tokens, the
tile size and tokens per tile (read from the model directory), the media layout ms-swift wrote, and
ImageNet normalisation. A medium of T tiles becomes `<img>` + `<IMG_CONTEXT>` × (tokens per tile × T)
+ `</img>`, after `Frame{i}: ` per video frame, nothing for one image, `Image-{i}: ` for several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from m2se.data.processor import M2SEProcessor
from m2se.data.video import resize_frame
from m2se.data.vision import load_pretrained

IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"


@dataclass(frozen=True)
class InternVLVision:
    """Square tiles of ``tile_size`` px, each ``tokens_per_tile`` ``<IMG_CONTEXT>`` tokens that the model
    replaces with the tile's features; ``image_ids`` are the ids of ``<img>``, ``<IMG_CONTEXT>``, ``</img>``."""

    tile_size: int
    tokens_per_tile: int
    image_ids: tuple[int, int, int]
    max_image_tiles: ClassVar[None] = None  # dynamic tiling: data.max_tiles decides
    input_names: ClassVar[tuple[str, ...]] = ("pixel_values",)
    pixel_names: ClassVar[tuple[str, ...]] = ("pixel_values",)

    @property
    def image_token_id(self) -> int:
        """The id the model replaces with image features (``config.image_token_id``)."""
        return self.image_ids[1]

    @property
    def visual_token_ids(self) -> tuple[int, ...]:
        return (self.image_token_id,)

    def prefixes(self, image_tiles: Sequence[int], video_frames: Sequence[int]) -> list[tuple[str, int]]:
        """(text before it, tiles) per ``<image>`` in prompt order: images, then every video frame."""
        images = ["" if len(image_tiles) == 1 else f"Image-{i}: " for i in range(1, len(image_tiles) + 1)]
        frames = [f"Frame{i}: " for n in video_frames for i in range(1, n + 1)]
        return [*zip(images, image_tiles, strict=True), *((text, 1) for text in frames)]

    def pictures(
        self, image_tiles: Sequence[int], video_frames: Sequence[int]
    ) -> list[tuple[str, list[int]]]:
        """(text before it, placeholder ids) per ``<image>``: each video frame is a picture of one tile."""
        return [(text, self.placeholder(tiles)) for text, tiles in self.prefixes(image_tiles, video_frames)]

    def placeholder(self, tiles: int) -> list[int]:
        """The ids of one ``<image>`` of ``tiles`` tiles."""
        start, context, end = self.image_ids
        return [start] + [context] * self.visual_tokens(tiles) + [end]

    def visual_tokens(self, tiles: int) -> int:
        """How many of ``placeholder(tiles)`` the model fills with image features."""
        return self.tokens_per_tile * tiles

    def tiles(self, tiles: np.ndarray) -> torch.Tensor:
        """uint8 (T, H, W, 3) → uint8 (T, 3, S, S); a tile of another size is squashed to S×S with PIL's
        bicubic, as InternVL's transform does."""
        if tiles.shape[1:3] != (self.tile_size, self.tile_size):
            tiles = np.stack([resize_frame(t, self.tile_size) for t in tiles])
        # One copy, straight into channels-first (a frame cache's memory-mapped array stays untouched).
        return torch.from_numpy(np.ascontiguousarray(tiles.transpose(0, 3, 1, 2)))

    def normalise(self, tiles: torch.Tensor) -> torch.Tensor:
        """uint8 (T, 3, S, S) → float32 (x / 255 - mean) / std with ImageNet's mean and std (InternVL's),
        as one fused multiply-add on the tiles' device."""
        scale, shift = (t.to(tiles.device) for t in _SCALE_SHIFT)
        return torch.addcmul(shift, tiles, scale)

    def pixel_values(self, tiles: np.ndarray) -> torch.Tensor:
        """uint8 (T, H, W, 3) → float32 (T, 3, S, S), squashed to S×S if needed, ImageNet-normalised."""
        return self.normalise(self.tiles(tiles))

    def inputs(
        self, images: Sequence[np.ndarray], videos: Sequence[np.ndarray], normalise: bool
    ) -> dict[str, torch.Tensor]:
        """``pixel_values``: every tile in prompt order (images, then video frames), (T, 3, S, S),
        float32 when ``normalise``, else uint8."""
        convert = self.pixel_values if normalise else self.tiles
        return {"pixel_values": torch.cat([convert(x) for x in (*images, *videos)])}

    def token_inputs(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}  # InternVL finds its pictures by image_token_id alone


_MEAN = torch.tensor(IMAGENET_DEFAULT_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
_STD = torch.tensor(IMAGENET_DEFAULT_STD, dtype=torch.float64).view(1, 3, 1, 1)
# (x / 255 - mean) / std = x * scale + shift
_SCALE_SHIFT = ((1 / (255 * _STD)).float(), (-_MEAN / _STD).float())


def from_pretrained(path: str | Path, **options) -> M2SEProcessor:
    """The processor for the native InternVL at ``path``: its tokenizer and chat template, tile size
    (``vision_config.image_size``) and tokens per tile (``image_seq_length``). ``options`` are
    ``M2SEProcessor``'s (system_prompt, max_length, over_budget, audio). OSError when there is no model,
    ValueError naming ``path`` when it is not an InternVL directory or its tokenizer lacks the image tokens.
    """
    tokenizer, config = load_pretrained(path, AutoTokenizer), load_pretrained(path, AutoConfig)
    if not hasattr(config, "vision_config") or not hasattr(config, "image_seq_length"):
        raise ValueError(f"{path}: not an InternVL model directory (config.json has no vision_config)")
    height, width = config.vision_config.image_size
    if height != width:
        raise ValueError(f"{path}: non-square vision image_size {height}x{width} is not supported")
    missing = [t for t in (IMG_START, IMG_END, IMG_CONTEXT) if t not in tokenizer.get_vocab()]
    if missing:
        raise ValueError(f"{path}: tokenizer lacks the InternVL image tokens {missing}")
    image_ids = tuple(tokenizer.convert_tokens_to_ids([IMG_START, IMG_CONTEXT, IMG_END]))
    if config.image_token_id != image_ids[1]:
        raise ValueError(
            f"{path}: config.image_token_id {config.image_token_id} != {IMG_CONTEXT} id {image_ids[1]}"
        )
    vision = InternVLVision(tile_size=height, tokens_per_tile=config.image_seq_length, image_ids=image_ids)
    return M2SEProcessor(tokenizer, vision, **options)

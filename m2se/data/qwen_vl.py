"""Qwen2-VL's and Qwen2.5-VL's half of the processor: pictures as Qwen's patch grids, without torchvision.

The model half is ``m2se.model.qwen_vl``; ``conf/model/qwen*.yaml`` names both. Media are read as for
InternVL (the same frames at segment centres, each squashed to an S×S square, ``MediaLoader``), so the
two families are compared on the same pixels. An image is one picture of one S×S frame:
`<|vision_start|>` + `<|image_pad|>` × (S/28)² + `<|vision_end|>`. A clip of N frames is one picture of
Qwen's temporal patches, pairs of frames (an odd last frame is repeated, as transformers' video
processor does): `<|vision_start|>` + `<|video_pad|>` × ⌈N/2⌉·(S/28)² + `<|vision_end|>`. With 8 frames at
448 px that is 1,024 tokens per clip (InternVL: 2,048). Pixels are scaled to [0, 1] and normalised
with CLIP's mean and std, then cut into flat 14×14×2 patches in the order of transformers'
``Qwen2VLImageProcessorPil`` and video processor (a test holds them equal).

Qwen's rotary positions space a clip's patch pairs by its frame rate; the frames here are sampled per
clip, not per second, so ``frames_per_second`` (default 2, what transformers assumes when told none)
stands for every clip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from m2se.data.processor import M2SEProcessor
from m2se.data.video import resize_frame
from m2se.data.vision import load_pretrained

VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
IMAGE, VIDEO = 1, 2  # mm_token_type_ids: what each token is (text: 0)


@dataclass(frozen=True)
class QwenVLVision:
    """Square frames of ``tile_size`` px cut into ``patch_size`` patches, ``temporal_patch_size`` frames
    deep, merged ``merge_size``² to a token. ``ids``: ``<|vision_start|>``, ``<|vision_end|>``,
    ``<|image_pad|>``, ``<|video_pad|>``. ``seconds_per_group``: the time a video's patch pair spans, for
    models whose rotary positions take it (Qwen2.5-VL's ``second_per_grid_ts``); None for Qwen2-VL."""

    tile_size: int
    ids: tuple[int, int, int, int]
    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    seconds_per_group: float | None = None
    max_image_tiles: ClassVar[int] = 1  # Qwen takes an image whole: one squashed frame, no tiling
    pixel_names: ClassVar[tuple[str, ...]] = ("pixel_values", "pixel_values_videos")

    def __post_init__(self) -> None:
        factor, size = self.patch_size * self.merge_size, self.tile_size
        if isinstance(size, bool) or not isinstance(size, int) or size < factor or size % factor:
            raise ValueError(
                f"model.processor.frame_size must be a positive multiple of {factor} px, got {size!r}"
            )

    @property
    def visual_token_ids(self) -> tuple[int, ...]:
        return self.ids[2], self.ids[3]

    @property
    def input_names(self) -> tuple[str, ...]:
        names = (
            "pixel_values",
            "image_grid_thw",
            "pixel_values_videos",
            "video_grid_thw",
            "mm_token_type_ids",
        )
        return names + (("second_per_grid_ts",) if self.seconds_per_group is not None else ())

    @property
    def tokens_per_frame(self) -> int:
        """Tokens of one frame (one patch pair of a video): (S / (patch × merge))²."""
        return (self.tile_size // (self.patch_size * self.merge_size)) ** 2

    def groups(self, frames: int) -> int:
        """A clip's temporal patches: its frames in pairs, an odd last one repeated."""
        return -(-frames // self.temporal_patch_size)

    def pictures(
        self, image_tiles: Sequence[int], video_frames: Sequence[int]
    ) -> list[tuple[str, list[int]]]:
        """(text before it, placeholder ids): one picture per image (a frame) and per clip (its patch pairs)."""
        start, end, image, video = self.ids
        images = ["" if len(image_tiles) == 1 else f"Image-{i}: " for i in range(1, len(image_tiles) + 1)]
        videos = ["" if len(video_frames) == 1 else f"Video-{i}: " for i in range(1, len(video_frames) + 1)]
        out = [(text, [start] + [image] * self.tokens_per_frame + [end]) for text in images]
        for text, frames in zip(videos, video_frames, strict=True):
            out.append((text, [start] + [video] * self.groups(frames) * self.tokens_per_frame + [end]))
        return out

    def frames(self, array: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) → uint8 (N, 3, S, S), squashed to S×S with PIL's bicubic where needed."""
        if array.shape[1:3] != (self.tile_size, self.tile_size):
            array = np.stack([resize_frame(f, self.tile_size) for f in array])
        return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))

    def patches(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) frames of one picture → (⌈N/2⌉·(S/14)², 3·2·14·14) flat patches, dtype kept: the
        layout of transformers' Qwen2-VL processors (an image is its frame twice, a clip's odd last frame
        is repeated)."""
        t, p, m = self.temporal_patch_size, self.patch_size, self.merge_size
        if pad := -len(frames) % t:
            frames = torch.cat([frames, frames[-1:].expand(pad, -1, -1, -1)])
        groups, channels, side = len(frames) // t, frames.shape[1], frames.shape[-1] // p
        grid = frames.reshape(groups, t, channels, side // m, m, p, side // m, m, p)
        grid = grid.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        return grid.reshape(groups * side * side, channels * t * p * p)

    def inputs(
        self, images: Sequence[np.ndarray], videos: Sequence[np.ndarray], normalise: bool
    ) -> dict[str, torch.Tensor]:
        """``pixel_values`` and ``image_grid_thw`` for the images (each its last tile: the whole image),
        ``pixel_values_videos``, ``video_grid_thw`` (and ``second_per_grid_ts``) for the clips; patches
        float32 when ``normalise``, else uint8."""
        side = self.tile_size // self.patch_size
        out: dict[str, torch.Tensor] = {}
        for kind, media in (("", [x[-1:] for x in images]), ("_videos", list(videos))):
            if not media:
                continue
            patches = torch.cat([self.patches(self.frames(x)) for x in media])
            out[f"pixel_values{kind}"] = self.normalise(patches) if normalise else patches
            grids = [[self.groups(len(x)) if kind else 1, side, side] for x in media]
            out["video_grid_thw" if kind else "image_grid_thw"] = torch.tensor(grids, dtype=torch.long)
            if kind and self.seconds_per_group is not None:
                out["second_per_grid_ts"] = torch.full((len(media),), self.seconds_per_group)
        return out

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 patches (P, 3·2·14·14) → float32 (x / 255 - mean) / std with CLIP's mean and std
        (Qwen's), per channel, as one fused multiply-add on the patches' device."""
        scale, shift = (t.to(pixels.device) for t in _SCALE_SHIFT)
        channels = pixels.view(len(pixels), 3, -1)
        return torch.addcmul(shift, channels, scale).view(pixels.shape)

    def token_inputs(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """``mm_token_type_ids`` (B, L): 1 on image tokens, 2 on video tokens, 0 elsewhere (what places
        the pictures in Qwen's 3-D rotary positions)."""
        types = torch.zeros_like(input_ids, dtype=torch.int)
        types[input_ids == self.ids[2]] = IMAGE
        types[input_ids == self.ids[3]] = VIDEO
        return {"mm_token_type_ids": types}


_MEAN = torch.tensor(OPENAI_CLIP_MEAN, dtype=torch.float64).view(1, 3, 1)
_STD = torch.tensor(OPENAI_CLIP_STD, dtype=torch.float64).view(1, 3, 1)
_SCALE_SHIFT = ((1 / (255 * _STD)).float(), (-_MEAN / _STD).float())


def from_pretrained(
    path: str | Path, frame_size: int = 448, frames_per_second: float = 2.0, **options
) -> M2SEProcessor:
    """The processor for the Qwen2-VL or Qwen2.5-VL at ``path``: its tokenizer and chat template, patch,
    merge and temporal patch sizes (``vision_config``), pictures at ``frame_size`` px (a multiple of 28).
    ``frames_per_second``: the rate the clips' frames stand for in Qwen2.5-VL's positions. ``options`` are
    ``M2SEProcessor``'s. OSError when there is no model, ValueError naming ``path`` when it is not a
    Qwen-VL directory or its tokenizer lacks the vision tokens."""
    tokenizer, config = load_pretrained(path, AutoTokenizer), load_pretrained(path, AutoConfig)
    vision_config = getattr(config, "vision_config", None)
    if vision_config is None or not hasattr(vision_config, "spatial_merge_size"):
        raise ValueError(
            f"{path}: not a Qwen2-VL or Qwen2.5-VL model directory (no vision_config.spatial_merge_size)"
        )
    tokens = (VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD)
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if missing:
        raise ValueError(f"{path}: tokenizer lacks the Qwen-VL vision tokens {missing}")
    ids = tuple(tokenizer.convert_tokens_to_ids(list(tokens)))
    if (config.image_token_id, config.video_token_id) != ids[2:]:
        raise ValueError(
            f"{path}: config's image/video token ids {config.image_token_id}/{config.video_token_id} "
            f"are not the tokenizer's {IMAGE_PAD}/{VIDEO_PAD} ids {ids[2]}/{ids[3]}"
        )
    if (
        isinstance(frames_per_second, bool)
        or not isinstance(frames_per_second, int | float)
        or not (math.isfinite(frames_per_second) and frames_per_second > 0)
    ):
        raise ValueError(f"model.processor.frames_per_second must be a number > 0, got {frames_per_second!r}")
    temporal = vision_config.temporal_patch_size
    timed = hasattr(vision_config, "tokens_per_second")  # Qwen2.5-VL spaces patch pairs in time
    vision = QwenVLVision(
        tile_size=frame_size,
        ids=ids,
        patch_size=vision_config.patch_size,
        merge_size=vision_config.spatial_merge_size,
        temporal_patch_size=temporal,
        seconds_per_group=temporal / frames_per_second if timed else None,
    )
    return M2SEProcessor(tokenizer, vision, **options)

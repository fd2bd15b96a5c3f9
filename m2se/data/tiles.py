"""Dynamic tiling of images into square tiles (the grid nearest the image's aspect ratio, plus a
thumbnail; InternVL introduced it), on transformers' GotOcr2 image processor (no torchvision needed).
The tile side is the processor's; how tiles become pixel values is the backbone family's vision."""

from __future__ import annotations

import numpy as np
from transformers import GotOcr2ImageProcessorPil
from transformers.image_utils import PILImageResampling, SizeDict
from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import get_optimal_tiled_canvas


def check_rgb(array: np.ndarray, ndim: int, what: str) -> None:
    if array.dtype != np.uint8 or array.ndim != ndim or array.shape[-1] != 3 or array.size == 0:
        raise ValueError(
            f"{what}: expected non-empty uint8 RGB of {ndim} dims (..., 3), got {array.dtype} {array.shape}"
        )


def count_tiles(height: int, width: int, tile_size: int, max_tiles: int, use_thumbnail: bool = True) -> int:
    """How many tiles tile_image gives for an image of this size (without decoding it)."""
    if max_tiles < 1:
        raise ValueError(f"max_tiles must be >= 1, got {max_tiles}")
    columns, rows = get_optimal_tiled_canvas((height, width), (tile_size, tile_size), 1, max_tiles)
    return columns * rows + (1 if use_thumbnail and columns * rows > 1 else 0)


def tile_image(image: np.ndarray, tile_size: int, max_tiles: int, use_thumbnail: bool = True) -> np.ndarray:
    """Dynamic tiling of one uint8 (H, W, 3) image → uint8 (T, tile_size, tile_size, 3).

    The grid (cols × rows ≤ max_tiles) has the aspect ratio closest to the image's; a thumbnail of
    the whole image is appended when the grid has more than one tile.
    """
    check_rgb(image, 3, "tile_image")
    if max_tiles < 1:
        raise ValueError(f"max_tiles must be >= 1, got {max_tiles}")
    # Channels-first in, so a 3-pixel-high image cannot be mistaken for channels-first.
    tiles = GotOcr2ImageProcessorPil().crop_image_to_patches(
        np.moveaxis(image, -1, 0),
        min_patches=1,
        max_patches=max_tiles,
        use_thumbnail=use_thumbnail,
        patch_size=SizeDict(height=tile_size, width=tile_size),
        resample=PILImageResampling.BICUBIC,
    )
    return np.moveaxis(np.stack(tiles), 1, -1)

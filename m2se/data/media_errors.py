"""The error every media reader raises, and the file check each starts with.

A leaf (no project imports), so readers of frames, images, sound and feature files share it without
importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path


class MediaError(Exception):
    """Missing, empty, unreadable or corrupt media; the message is one line, ``<path>: <reason>``."""


def check_file(path: str | os.PathLike) -> None:
    """MediaError unless ``path`` is a non-empty file."""
    if Path(path).is_dir():
        raise MediaError(f"{path}: a folder, not a file")
    if not Path(path).is_file():
        raise MediaError(f"{path}: missing file")
    if Path(path).stat().st_size == 0:
        raise MediaError(f"{path}: empty file")

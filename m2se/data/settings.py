"""The data config's settings that take a count or one of a few words, checked with one line each
naming ``data.<key>``: by ``MultiTaskDataModule`` when it is built, and by ``m2se.config_checks``
before an entry script loads anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from m2se.data.video import Backend, Resize

# Counts of the data config: (minimum, may be null).
COUNTS = {
    "batch_size": (1, False),
    "num_batches": (1, True),
    "num_workers": (0, False),
    "val_max_per_task": (1, True),
    "num_frames": (1, False),
    "max_tiles": (1, False),
}


def check_counts(**values: Any) -> None:
    """ValueError naming ``data.<key>`` unless each of ``COUNTS`` given is an integer at or above its
    minimum (or null where it may be): ``batch_size=-1`` would otherwise make no batches, silently."""
    for key, value in values.items():
        minimum, optional = COUNTS[key]
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            null = " (or null)" if optional else ""
            raise ValueError(f"data.{key} must be an integer >= {minimum}{null}, got {value!r}")


# Settings of the data config that take one of a few words (``data.processor.*``: the processor's).
CHOICES = {
    "video_backend": get_args(Backend),
    "video_resize": get_args(Resize),
    "on_bad_record": ("raise", "skip"),
    "on_media_error": ("skip", "raise"),
    "processor.over_budget": ("truncate", "skip"),
    "processor.pixels": ("float32", "uint8"),
}


def check_choices(values: Mapping[str, Any]) -> None:
    """ValueError naming ``data.<key>`` and its choices unless each of ``CHOICES`` given (by its key,
    ``processor.pixels`` included) is one of them."""
    for key, value in values.items():
        if value not in CHOICES[key]:
            raise ValueError(f"data.{key} must be one of {', '.join(CHOICES[key])}; got {value!r}")

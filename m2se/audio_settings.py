"""``model.audio``: what the model hears, the one object the processor and the module both read.

A leaf: it imports nothing of the project, so ``m2se.data`` (placeholders in prompts, reading sound)
and ``m2se.model`` (the speech encoder and projectors) share it without importing each other.
Which task names are known is checked where the tasks are (``m2se.data.audio.check_tasks``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal


@dataclass(frozen=True)
class FeatureView:
    """A pre-extracted feature file per clip: vectors of width ``dim``, pooled to ``tokens`` tokens."""

    dim: int
    tokens: int = 1


@dataclass(frozen=True)
class AudioSettings:
    """``model.audio`` (the ``conf/model/audio/`` group): the speech encoder, feature views and which
    tasks get them.

    ``encoder`` null and no ``features``: nothing is added. ``tasks`` lists the tasks whose prompts
    get the placeholders (``all``: every task). ``missing``: a record of such a task without sound
    (or without a view's file) loses that placeholder and is counted (``drop``), or is skipped and
    counted (``skip``). ``sampling_rate`` null: the encoder's feature extractor's. ValueError on a
    bad ``missing``, a count below 1 or a view name that is not lowercase ``[a-z0-9_]``.
    """

    encoder: str | None = None
    tokens: int = 8
    freeze_encoder: bool = True
    tasks: Sequence[str] | Literal["all"] = "all"
    missing: Literal["drop", "skip"] = "drop"
    max_seconds: float | None = 10.0
    sampling_rate: int | None = None
    features: Mapping[str, FeatureView] = field(default_factory=dict)

    def __post_init__(self) -> None:
        views = {k: v if isinstance(v, FeatureView) else FeatureView(**v) for k, v in self.features.items()}
        object.__setattr__(self, "features", views)
        if self.tasks != "all":
            object.__setattr__(self, "tasks", tuple(self.tasks))
        if self.missing not in ("drop", "skip"):
            raise ValueError(f"model.audio.missing must be 'drop' or 'skip', got {self.missing!r}")
        if self.tokens < 1 or any(v.tokens < 1 or v.dim < 1 for v in views.values()):
            raise ValueError("model.audio: tokens, and every feature view's dim and tokens, must be >= 1")
        for view in views:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", view):
                raise ValueError(f"model.audio.features: view name {view!r} must be lowercase [a-z0-9_]")

    @classmethod
    def of(cls, value: AudioSettings | Mapping | None) -> AudioSettings:
        return value if isinstance(value, cls) else cls(**(value or {}))

    @property
    def enabled(self) -> bool:
        return self.encoder is not None or bool(self.features)

    def applies_to(self, task: str) -> bool:
        return self.enabled and (self.tasks == "all" or task in self.tasks)

    def layout(self) -> tuple:
        """What decides the placeholders in prompts and the weights that fill them."""
        if not self.enabled:
            return ()
        views = tuple((view, spec.tokens, spec.dim) for view, spec in self.features.items())
        return self.encoder is not None, self.tokens if self.encoder else 0, self.tasks, views

    def to_dict(self) -> dict:
        plain = asdict(self)
        plain["tasks"] = self.tasks if self.tasks == "all" else list(self.tasks)
        return plain

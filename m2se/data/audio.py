"""Hearing and extra views, the Emotion-LLaMA way: a clip's sound and pre-extracted feature files.

A record's audio is its ``audio`` file (a wav, say) or else its first video's sound track, decoded
with PyAV to mono float32 at the speech encoder's rate. Feature views are ``.npy`` files named by the
record's ``features`` mapping (``{"face": "feats/clip.npy"}``), one vector or a (T, D) sequence per
clip, as Emotion-LLaMA ships its MAE / VideoMAE / HuBERT features. Which tasks hear, how many tokens
each kind becomes and what happens to a record without sound is ``AudioSettings`` (``model.audio``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from m2se.data.records import Record
from m2se.data.video import MediaError, _check_file
from m2se.tasks import TASKS


class NoAudioError(MediaError):
    """Nothing to place: no sound (``kind`` "audio") or no file for a feature view ("face features")."""

    def __init__(self, message: str, kind: str = "audio") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class FeatureView:
    """A pre-extracted feature file per clip: vectors of width ``dim``, pooled to ``tokens`` tokens."""

    dim: int
    tokens: int = 1


@dataclass(frozen=True)
class AudioSettings:
    """``model.audio``: the speech encoder, feature views and which tasks get them.

    ``encoder`` null and no ``features``: nothing is added. ``tasks`` lists the tasks whose prompts
    get the placeholders (``all``: every task). ``missing``: a record of such a task without sound
    (or without a view's file) loses that placeholder and is counted (``drop``), or is skipped and
    counted (``skip``). ``sampling_rate`` null: the encoder's feature extractor's.
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
            unknown = sorted(set(self.tasks) - set(TASKS))
            if unknown:
                raise ValueError(
                    f"model.audio.tasks: unknown tasks {unknown} (known: {', '.join(TASKS)}, or all)"
                )
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
        """What decides the placeholders in prompts: processor and model must agree on it."""
        if not self.enabled:
            return ()
        views = tuple((view, spec.tokens, spec.dim) for view, spec in self.features.items())
        return self.encoder is not None, self.tokens if self.encoder else 0, self.tasks, views

    def to_dict(self) -> dict:
        plain = asdict(self)
        plain["tasks"] = self.tasks if self.tasks == "all" else list(self.tasks)
        return plain


def read_audio(path: str | os.PathLike, sampling_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """The first audio stream of a clip or sound file as mono float32 (N,) at ``sampling_rate``.

    At most ``max_seconds`` from the start. A file without an audio stream raises NoAudioError.
    """
    import av

    _check_file(path)
    limit = None if max_seconds is None else int(max_seconds * sampling_rate)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise NoAudioError(f"{path}: no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sampling_rate)
            chunks, total = [], 0
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += len(chunks[-1])
                if limit is not None and total >= limit:
                    break
            else:
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except MediaError:
        raise
    except Exception as error:  # FFmpeg's errors repeat the path in str(); strerror is the reason
        reason = (getattr(error, "strerror", None) or str(error) or type(error).__name__).strip()
        raise MediaError(f"{path}: corrupt audio ({reason.splitlines()[0][:200]})") from None
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if not len(samples):
        raise NoAudioError(f"{path}: audio stream holds no samples")
    return samples[:limit]


def read_features(path: str | os.PathLike, dim: int | None = None) -> np.ndarray:
    """A ``.npy`` feature file as float32 (T, D); a vector becomes (1, D). Bad files raise MediaError."""
    _check_file(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise MediaError(f"{path}: unreadable feature file ({str(error).splitlines()[0][:200]})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu" or array.ndim not in (1, 2):
        shape = getattr(array, "shape", "an archive")
        raise MediaError(f"{path}: expected a vector or a (T, D) numeric array, got {shape}")
    array = np.atleast_2d(array).astype(np.float32)
    if 0 in array.shape:
        raise MediaError(f"{path}: empty feature array {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise MediaError(f"{path}: features of width {array.shape[1]}, expected {dim} (shape {array.shape})")
    if not np.isfinite(array).all():
        raise MediaError(f"{path}: features hold NaN or inf")
    return array


@dataclass
class Heard:
    """What a record contributes beyond its pictures; ``dropped`` names the placeholders left out."""

    audio: np.ndarray | None = None
    features: dict[str, np.ndarray] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class AudioLoader:
    """Reads a record's sound and feature views as ``AudioSettings`` asks for its task."""

    settings: AudioSettings
    sampling_rate: int | None = None

    def load(self, record: Record) -> Heard:
        """Raises NoAudioError (``missing: skip``) or MediaError (a bad file) naming the file."""
        if not self.settings.applies_to(record.task):
            return Heard()
        heard, dropped = Heard(), []
        if self.settings.encoder is not None:
            source = record.audio or (record.videos[0] if record.videos else None)
            try:
                if source is None:
                    raise NoAudioError("no audio file and no video to take the sound from")
                heard.audio = read_audio(source, self.sampling_rate, self.settings.max_seconds)
            except NoAudioError as err:
                self._missing(err, dropped)
        for view, spec in self.settings.features.items():
            path = record.features.get(view)
            if path is None:
                self._missing(NoAudioError(f"no '{view}' feature file", f"{view} features"), dropped)
            else:
                heard.features[view] = read_features(path, spec.dim)
        heard.dropped = tuple(dropped)
        return heard

    def _missing(self, err: NoAudioError, dropped: list[str]) -> None:
        if self.settings.missing == "skip":
            raise err
        dropped.append(err.kind)


def resolve_sampling_rate(settings: AudioSettings) -> int | None:
    """The rate audio is read at: ``settings.sampling_rate``, else the encoder's feature extractor's."""
    if settings.encoder is None or settings.sampling_rate is not None:
        return settings.sampling_rate
    return load_feature_extractor(settings.encoder).sampling_rate


def load_feature_extractor(encoder: str | Path):
    from transformers import AutoFeatureExtractor

    try:
        return AutoFeatureExtractor.from_pretrained(str(encoder))
    except (OSError, ValueError) as err:
        raise OSError(
            f"model.audio.encoder {str(encoder)!r}: no speech feature extractor there "
            f"({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}); the tiny "
            f"one is built by `python -m m2se.model.tiny --audio --out {encoder}`"
        ) from None

"""Hearing and extra views, the Emotion-LLaMA way: a clip's sound and pre-extracted feature files.

A record's audio is its ``audio`` file (a wav, say) or else its first video's sound track, decoded
with PyAV to mono float32 at the speech encoder's rate. Feature views are ``.npy`` files named by the
record's ``features`` mapping (``{"face": "feats/clip.npy"}``), one vector or a (T, D) sequence per
clip, as Emotion-LLaMA ships its MAE / VideoMAE / HuBERT features. Which tasks hear, how many tokens
each kind becomes and what happens to a record without sound is ``AudioSettings`` (``model.audio``,
``m2se.audio_settings``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from m2se.audio_settings import AudioSettings
from m2se.data.media_errors import MediaError, check_file
from m2se.data.records import Record
from m2se.tasks import TASKS


class NoAudioError(MediaError):
    """Nothing to place: no sound (``kind`` "audio") or no file for a feature view ("face features")."""

    def __init__(self, message: str, kind: str = "audio") -> None:
        super().__init__(message)
        self.kind = kind


def check_tasks(settings: AudioSettings) -> AudioSettings:
    """``settings`` when every task it names is known; ValueError naming the unknown ones otherwise."""
    if settings.tasks != "all":
        unknown = sorted(set(settings.tasks) - set(TASKS))
        if unknown:
            raise ValueError(
                f"model.audio.tasks: unknown tasks {unknown} (known: {', '.join(TASKS)}, or all)"
            )
    return settings


def read_audio(path: str | os.PathLike, sampling_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """The first audio stream of a clip or sound file as mono float32 (N,) at ``sampling_rate``.

    At most ``max_seconds`` from the start. A file without an audio stream raises NoAudioError.
    """
    import av

    check_file(path)
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
    check_file(path)
    try:
        # Memory-mapped: a header claiming more data than the file holds fails here, not as a
        # MemoryError allocating it.
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, MemoryError) as error:
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

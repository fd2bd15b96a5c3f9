"""MER2023 challenge tables → mer2023 records (Emotion-LLaMA's recognition prompt, bare-label answers).

    python -m m2se.sources mer2023 test_label.csv transcription.csv --out mer2023_test.json \\
        --media-prefix MER2023/video/ [--audio-prefix MER2023/audio/] [--features audio=MER2023/HL-UTT/]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from m2se.sources.common import BuildResult, InputError, Inputs, check_choice, finite, input_paths, table_rows
from m2se.tasks import TASKS

LABELS = TASKS["mer2023"].labels  # neutral angry happy sad worried surprise
MEDIA = ("video", "frame")
LANGUAGES = ("english", "chinese")


def feature_view(text: str) -> tuple[str, str]:
    """``VIEW=PREFIX`` → (view, prefix); argparse reports a bad value as a usage error."""
    view, sep, prefix = text.partition("=")
    if not sep or not view.strip() or not prefix:
        raise argparse.ArgumentTypeError(f"expected VIEW=PREFIX (like audio=HL-UTT/), got {text!r}")
    return view.strip(), prefix


def add_media_arguments(parser: argparse.ArgumentParser) -> None:
    """The MER2023 clip pool's media options (shared with the MERR builder)."""
    parser.add_argument(
        "--media",
        choices=MEDIA,
        help="video: videos NAME.mp4 (default); frame: images NAME.jpg (first frame)",
    )
    parser.add_argument("--audio-prefix", metavar="A", help='add "audio": A + NAME.wav to each record')
    parser.add_argument(
        "--features",
        type=feature_view,
        action="append",
        metavar="VIEW=PREFIX",
        help='add "features": {VIEW: PREFIX + NAME.npy} (repeatable, one per view)',
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--language", choices=LANGUAGES, help="transcription column quoted as the subtitle (default: english)"
    )
    add_media_arguments(parser)


@dataclass(frozen=True)
class ClipMedia:
    """Where a clip's video or frame, audio and feature files are, from the media options."""

    frames: bool = False
    audio_prefix: str | None = None
    features: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_options(
        cls, media: str, audio_prefix: str | None, features: Sequence[tuple[str, str]]
    ) -> ClipMedia:
        """From the builders' ``media``, ``audio_prefix`` and ``features`` (``(view, prefix)`` pairs)."""
        check_choice("media", media, MEDIA)
        views = [view for view, _ in features]
        repeated = sorted({view for view in views if views.count(view) > 1})
        if repeated:
            raise InputError(f"--features: view {repeated[0]!r} is given twice")
        return cls(media == "frame", audio_prefix, tuple((view, prefix) for view, prefix in features))

    def of(self, name: str) -> tuple[str, str, dict[str, Any]]:
        """(media key, file name, extra record fields) of clip ``name``."""
        key, file = ("images", f"{name}.jpg") if self.frames else ("videos", f"{name}.mp4")
        extra: dict[str, Any] = {}
        if self.audio_prefix:
            extra["audio"] = f"{self.audio_prefix}{name}.wav"
        if self.features:
            extra["features"] = {view: f"{prefix}{name}.npy" for view, prefix in self.features}
        return key, file, extra


def read_transcripts(path: Path, language: str, result: BuildResult) -> dict[str, str]:
    """Clip name → subtitle (whitespace collapsed); the first row of a clip wins."""
    subtitles: dict[str, str] = {}
    for _, row in table_rows(path, ("name", language), result):
        subtitles.setdefault(row["name"].strip(), " ".join(row[language].split()))
    return subtitles


def build_mer2023(
    inputs: Inputs,
    *,
    language: Literal["english", "chinese"] = "english",
    media: Literal["video", "frame"] = "video",
    audio_prefix: str | None = None,
    features: Sequence[tuple[str, str]] = (),
    media_prefix: str = "",
    media_root: str | Path | None = None,
) -> BuildResult:
    """mer2023 records from the MER2023 challenge's label and transcription tables.

    ``inputs`` are exactly two files: the label table (columns ``name, discrete``, optionally
    ``valence``, kept as a finite number) and the transcription table (``name, chinese, english``;
    ``language`` picks the column). Labels are neutral, angry, happy, sad, worried, surprise, in any
    case; the answer is the bare lowercase label (``happy``) and the query Emotion-LLaMA's recognition
    prompt, as Emotion-LLaMA trains them. An empty transcription is kept as an empty subtitle.

    Media per clip ``name``: ``media="video"`` → ``videos: [media_prefix + name + ".mp4"]``;
    ``media="frame"`` → ``images: [media_prefix + name + ".jpg"]`` (a first-frame image, as
    Emotion-LLaMA sees the clip). ``audio_prefix`` adds ``"audio": audio_prefix + name + ".wav"``; each
    ``(view, prefix)`` of ``features`` adds ``"features": {view: prefix + name + ".npy"}``
    (Emotion-LLaMA's pre-extracted utterance features). Only the video or frame is checked under
    ``media_root``.

    Returns the records; clips without a transcription row, unknown labels, repeated or empty clip
    names, a valence that is not a finite number and missing media are counted skips. Raises
    ``InputError`` when there are not two inputs, a table cannot be read or lacks a column, or a feature
    view is given twice, and ValueError for a ``language`` or ``media`` not listed above.
    """
    check_choice("language", language, LANGUAGES)
    paths = input_paths(inputs)
    if len(paths) != 2:
        raise InputError(f"mer2023: expected LABEL_CSV TRANSCRIPT_CSV, got {len(paths)} input(s)")
    labels_path, transcripts_path = paths
    result, task = BuildResult(media_prefix=media_prefix, media_root=media_root), TASKS["mer2023"]
    clips = ClipMedia.of_options(media, audio_prefix, features)
    subtitles = read_transcripts(transcripts_path, language, result)
    seen: set[str] = set()
    for where, row in table_rows(labels_path, ("name", "discrete"), result):
        name, label = row["name"].strip(), row["discrete"].strip().lower()
        if label not in LABELS:
            expected = ", ".join(LABELS)
            message = f"unknown MER2023 label {row['discrete']!r} (expected one of {expected})"
            result.skip(where, message, "unknown label")
            continue
        if not name or name in seen:
            result.skip(where, f"empty or repeated clip name {name!r}", "broken row")
            continue
        if name not in subtitles:
            result.skip(where, f"clip {name} has no row in {transcripts_path.name}", "no transcript")
            continue
        extra = {}
        if row.get("valence", "").strip():
            try:
                extra["valence"] = finite(row["valence"])
            except ValueError:
                result.skip(where, f"valence {row['valence']!r} is not a finite number", "broken row")
                continue
        seen.add(name)
        key, file, media_extra = clips.of(name)
        result.add(where, task.query(subtitles[name]), label, key, file, **extra, **media_extra)
    return result

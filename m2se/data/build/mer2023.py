"""MER2023 challenge tables → mer2023 records (Emotion-LLaMA's recognition prompt, bare-label answers).

    python -m m2se.data.build mer2023 test_label.csv transcription.csv --out mer2023_test.json \\
        --media-prefix MER2023/video/ [--audio-prefix MER2023/audio/] [--features audio=MER2023/HL-UTT/]

Exactly two inputs: the label table (columns ``name, discrete``, optionally ``valence``, kept as a finite number)
and the transcription table (``name, chinese, english``; ``--language`` picks the column). Labels are
neutral, angry, happy, sad, worried, surprise, in any case; the answer is the bare lowercase label
(``happy``), as Emotion-LLaMA trains it. Clips without a transcription row, unknown labels and repeated
clips are counted skips; an empty transcription is kept as an empty subtitle.

Media per clip ``name``: ``--media video`` (default) → ``videos: [P + name + ".mp4"]``; ``--media frame``
→ ``images: [P + name + ".jpg"]`` (a first-frame image, as Emotion-LLaMA sees the clip).
``--audio-prefix A`` adds ``"audio": A + name + ".wav"``; each ``--features VIEW=PREFIX`` adds
``"features": {VIEW: PREFIX + name + ".npy"}`` (Emotion-LLaMA's pre-extracted utterance features).
Only the video/frame is checked under ``--media-root``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m2se.data.build.common import BuildResult, InputError, finite, table_rows
from m2se.tasks import TASKS

LABELS = TASKS["mer2023"].labels  # neutral angry happy sad worried surprise


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
        choices=("video", "frame"),
        default="video",
        help="video: videos NAME.mp4 (default); frame: images NAME.jpg (first frame)",
    )
    parser.add_argument("--audio-prefix", metavar="A", help='add "audio": A + NAME.wav to each record')
    parser.add_argument(
        "--features",
        type=feature_view,
        action="append",
        default=[],
        metavar="VIEW=PREFIX",
        help='add "features": {VIEW: PREFIX + NAME.npy} (repeatable, one per view)',
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--language",
        choices=("english", "chinese"),
        default="english",
        help="transcription column quoted as the subtitle (default: english)",
    )
    add_media_arguments(parser)


@dataclass(frozen=True)
class ClipMedia:
    """Where a clip's video or frame, audio and feature files are, from the media options."""

    frames: bool = False
    audio_prefix: str | None = None
    features: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ClipMedia:
        views = [view for view, _ in args.features]
        repeated = sorted({view for view in views if views.count(view) > 1})
        if repeated:
            raise InputError(f"--features: view {repeated[0]!r} is given twice")
        return cls(args.media == "frame", args.audio_prefix, tuple(args.features))

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


def run(args: argparse.Namespace) -> BuildResult:
    if len(args.inputs) != 2:
        raise InputError(f"mer2023: expected LABEL_CSV TRANSCRIPT_CSV, got {len(args.inputs)} input(s)")
    labels_path, transcripts_path = args.inputs
    result, task, media = BuildResult.for_args(args), TASKS["mer2023"], ClipMedia.from_args(args)
    subtitles = read_transcripts(transcripts_path, args.language, result)
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
        key, file, media_extra = media.of(name)
        result.add(where, task.query(subtitles[name]), label, key, file, **extra, **media_extra)
    return result

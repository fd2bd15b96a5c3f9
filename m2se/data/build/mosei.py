"""CMU-MOSEI (MMSA ``label.csv``) → msa records, and with ``--emotions`` → mer records.

    python -m m2se.data.build mosei label.csv --split test --out mosei_msa_test.json --media-prefix MOSEI/frames/
    python -m m2se.data.build mosei label.csv --emotions emotions.csv --out mosei_mer.json

msa: the sentiment score (in [-3, 3]) is kept as ``"score"``; the answer is ``Positive.`` when score >= 0
(the "non-negative" convention of EmoVerse's binary labels, zero counted positive), else ``Negative.``;
a score that is not a finite number (``nan``, ``inf``) is a counted skip. The query quotes the text with
double quotes, like the released MOSEI example.

mer (``--emotions CSV``: ``video_id, clip_id, happy, sad, anger, surprise, disgust, fear`` intensities):
the answer is the strongest emotion; ties go to the first in that column order; all zero → ``Neutral.``.
Clips without a row in the emotion table are counted skips.

Media: ``--media frame`` (default, EmoVerse) → ``images: [P + "{video_id}_{clip_id}.png"]`` (the peak
frame); ``--media video`` → ``videos: [P + "{video_id}_{clip_id}.mp4"]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from m2se.data.build.common import BuildResult, finite, table_rows
from m2se.tasks import TASKS

COLUMNS = ("video_id", "clip_id", "text", "label", "mode")
EMOTIONS = {
    "happy": "Happy",
    "sad": "Sadness",
    "anger": "Anger",
    "surprise": "Surprise",
    "disgust": "Disgust",
    "fear": "Fear",
}  # CMU-MOSEI column → mer label; the order breaks ties


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--emotions",
        type=Path,
        metavar="CSV",
        help="per-clip intensities (video_id,clip_id,happy,sad,anger,surprise,disgust,fear): build mer, not msa",
    )
    parser.add_argument(
        "--media",
        choices=("frame", "video"),
        default="frame",
        help="frame: images {video_id}_{clip_id}.png (default, EmoVerse); video: videos {video_id}_{clip_id}.mp4",
    )
    parser.add_argument("--split", choices=("train", "valid", "test"), help="keep only rows of this mode")
    parser.epilog = "msa answers: score >= 0 -> Positive. (non-negative convention), score < 0 -> Negative."


def strongest(row: dict[str, str]) -> str:
    """The mer label of the strongest emotion (ValueError if an intensity is not a finite number)."""
    scores = [(finite(row[column]), label) for column, label in EMOTIONS.items()]
    best = max(score for score, _ in scores)
    return next(label for score, label in scores if score == best) if best > 0 else "Neutral"


def load_emotions(path: Path, result: BuildResult) -> dict[tuple[str, str], str]:
    labels = {}
    for where, row in table_rows(path, ("video_id", "clip_id", *EMOTIONS), result):
        try:
            labels[row["video_id"].strip(), row["clip_id"].strip()] = strongest(row)
        except ValueError:
            result.skip(where, "emotion intensities are not finite numbers", "broken row")
    return labels


def run(args: argparse.Namespace) -> BuildResult:
    result = BuildResult.for_args(args)
    emotions = load_emotions(args.emotions, result) if args.emotions else None
    task = TASKS["msa" if emotions is None else "mer"]
    key, suffix = ("images", ".png") if args.media == "frame" else ("videos", ".mp4")
    for path in args.inputs:
        for where, row in table_rows(path, COLUMNS, result):
            if args.split and row["mode"].strip() != args.split:
                continue
            video, clip = row["video_id"].strip(), row["clip_id"].strip()
            name, query = f"{video}_{clip}{suffix}", task.query(row["text"].strip(), quote='"')
            if emotions is not None:
                if (video, clip) not in emotions:
                    result.skip(
                        where, f"clip {video}_{clip} has no row in {args.emotions.name}", "no emotion label"
                    )
                    continue
                result.add(where, query, task.format(emotions[video, clip]), key, name)
                continue
            try:
                score = finite(row["label"])
            except ValueError:
                result.skip(where, f"sentiment score {row['label']!r} is not a finite number", "broken row")
                continue
            result.add(
                where, query, task.format("Positive" if score >= 0 else "Negative"), key, name, score=score
            )
    return result

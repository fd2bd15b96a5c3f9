"""CMU-MOSEI (MMSA ``label.csv``) → msa records, and with an emotion table → mer records.

python -m m2se.sources mosei label.csv --split test --out mosei_msa_test.json --media-prefix MOSEI/frames/
python -m m2se.sources mosei label.csv --emotions emotions.csv --out mosei_mer.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

from m2se.sources.common import BuildResult, Inputs, check_choice, finite, input_paths, table_rows
from m2se.tasks import TASKS

COLUMNS = ("video_id", "clip_id", "text", "label", "mode")
MEDIA = ("frame", "video")
SPLITS = ("train", "valid", "test")
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
        choices=MEDIA,
        default="frame",
        help="frame: images {video_id}_{clip_id}.png (default, EmoVerse); video: videos {video_id}_{clip_id}.mp4",
    )
    parser.add_argument("--split", choices=SPLITS, help="keep only rows of this mode")
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


def build_mosei(
    inputs: Inputs,
    *,
    emotions: str | Path | None = None,
    media: Literal["frame", "video"] = "frame",
    split: Literal["train", "valid", "test"] | None = None,
    media_prefix: str = "",
    media_root: str | Path | None = None,
) -> BuildResult:
    """msa records (or, with ``emotions``, mer records) from MMSA's CMU-MOSEI ``label.csv``.

    Each file needs the columns ``video_id, clip_id, text, label, mode``; ``split`` keeps only the rows
    whose ``mode`` is that split. The query quotes the text with double quotes, like the released MOSEI
    example.

    msa: the sentiment score (``label``, in [-3, 3]) is kept as ``"score"`` so Acc-2 can be computed
    under both conventions; the answer is ``Positive.`` when score >= 0 (the "non-negative" convention
    of EmoVerse's binary labels, zero counted positive), else ``Negative.``.

    mer (``emotions``: a CSV ``video_id, clip_id, happy, sad, anger, surprise, disgust, fear`` of
    CMU-MOSEI's emotion intensities), by m2se's rule: the answer is the strongest emotion; ties go to the
    first in that column order; all zero → ``Neutral.``.

    Media: ``media="frame"`` (EmoVerse) → ``images: [media_prefix + "{video_id}_{clip_id}.png"]`` (the
    peak frame); ``media="video"`` → ``videos: [media_prefix + "{video_id}_{clip_id}.mp4"]``.

    Returns the records; a score or intensity that is not a finite number (``nan``, ``inf``), a clip
    without a row in the emotion table and, with ``media_root``, a missing medium are counted skips.
    Raises ``InputError`` when a file cannot be read or lacks a column, and ValueError for a ``media``
    or ``split`` not listed above.
    """
    check_choice("media", media, MEDIA)
    if split is not None:
        check_choice("split", split, SPLITS)
    result = BuildResult(media_prefix=media_prefix, media_root=media_root)
    labels = load_emotions(Path(emotions), result) if emotions is not None else None
    task = TASKS["msa" if labels is None else "mer"]
    key, suffix = ("images", ".png") if media == "frame" else ("videos", ".mp4")
    for path in input_paths(inputs):
        for where, row in table_rows(path, COLUMNS, result):
            if split and row["mode"].strip() != split:
                continue
            video, clip = row["video_id"].strip(), row["clip_id"].strip()
            name, query = f"{video}_{clip}{suffix}", task.query(row["text"].strip(), quote='"')
            if labels is not None:
                if (video, clip) not in labels:
                    result.skip(
                        where, f"clip {video}_{clip} has no row in {Path(emotions).name}", "no emotion label"
                    )
                    continue
                result.add(where, query, task.format(labels[video, clip]), key, name)
                continue
            try:
                score = finite(row["label"])
            except ValueError:
                result.skip(where, f"sentiment score {row['label']!r} is not a finite number", "broken row")
                continue
            if not -3 <= score <= 3:  # CMU-MOSEI's sentiment scale; outside it the column is something else
                result.skip(where, f"sentiment score {score} is outside CMU-MOSEI's [-3, 3]", "broken row")
                continue
            result.add(
                where, query, task.format("Positive" if score >= 0 else "Negative"), key, name, score=score
            )
    return result

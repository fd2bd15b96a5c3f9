"""OpenFace 2 per-frame CSVs (one per clip) → fer records: the peak frame and its expression phrases.

    python -m m2se.sources fer openface/ --out mosei_fer.json --media-prefix MOSEI/peak_frames/ \\
        --transcripts transcripts.csv
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from m2se.data.records import WHERE_DATA
from m2se.sources.au_phrases import AU_PHRASES
from m2se.sources.common import BuildResult, InputError, Inputs, finite, input_paths, table_rows
from m2se.tasks import TASKS


def _threshold(text: str) -> float:
    try:
        return finite(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=_threshold, help="least AU intensity (0-5) named (default 1)")
    parser.add_argument("--transcripts", type=Path, metavar="CSV", help="clip,text table of utterances")


def peak(path: Path, result: BuildResult) -> tuple[str, dict[str, str], int] | None:
    """(``file:line``, row, frame number) of the peak frame, or None when no frame is usable."""
    best, best_sum = None, -1.0
    for where, row in table_rows(path, ("frame",), result):
        try:
            if "success" in row and finite(row["success"]) != 1:
                continue
            total = sum(finite(v) for k, v in row.items() if k.startswith("AU") and k.endswith("_r"))
            frame = int(finite(row["frame"]))
        except ValueError:
            result.skip(where, "a frame, success or AU value is not a finite number", "broken row")
            continue
        if total > best_sum:
            best, best_sum = (where, row, frame), total
    return best


def phrases(row: dict[str, str], threshold: float) -> list[str]:
    """Phrases of the AUs present and strong enough, strongest first (presence-only AUs last)."""
    found = []
    for au, phrase in AU_PHRASES.items():
        present = row.get(f"{au}_c")
        intensity = row.get(f"{au}_r")
        if present is None and intensity is None:
            continue
        if present is not None and finite(present) < 0.5:
            continue
        if intensity is not None and finite(intensity) < threshold:
            continue
        found.append((finite(intensity) if intensity is not None else -1.0, phrase))
    return [phrase for _, phrase in sorted(found, key=lambda item: -item[0])]


def build_fer(
    inputs: Inputs,
    *,
    threshold: float = 1.0,
    transcripts: str | Path | None = None,
    media_prefix: str = "",
    media_root: str | Path | None = None,
) -> BuildResult:
    """fer records from OpenFace 2 per-frame CSVs: one record per clip, its peak frame and AU phrases.

    ``inputs`` are folders of ``{clip}.csv`` files (or the files themselves). Column names are stripped
    of the leading space OpenFace writes. The peak frame is the one with the largest sum of ``AUxx_r``
    intensities, among frames with ``success == 1`` when that column exists. Its answer joins, with
    ``; ``, the phrases (``au_phrases.AU_PHRASES``, m2se's: EmoVerse did not release its table) of the
    AUs present (``AUxx_c == 1``) with intensity >= ``threshold`` (0-5), strongest first.

    Images are ``media_prefix + "{clip}_{frame:06d}.png"`` (``frame`` as OpenFace numbers it, from 1):
    the peak frame must be extracted under that name. ``transcripts`` (a CSV ``clip,text``) puts the
    utterance in the query; otherwise it is empty.

    Returns the records; a clip with no tracked frame or no AU at the threshold, a frame whose frame,
    success or AU value is not a finite number (``nan``, ``inf``) and, with ``media_root``, a missing
    image are counted skips. Raises ``InputError`` when an input does not exist or a file cannot be read
    or lacks a column, and ValueError for a ``threshold`` that is not a finite number.
    """
    if not math.isfinite(threshold):
        raise ValueError(f"threshold: expected a finite number, got {threshold!r}")
    result = BuildResult(media_prefix=media_prefix, media_root=media_root)
    task = TASKS["fer"]
    subtitles = {}
    if transcripts is not None:
        subtitles = {
            row["clip"].strip(): row["text"].strip()
            for _, row in table_rows(Path(transcripts), ("clip", "text"), result)
        }
    files = []
    for path in input_paths(inputs):
        if not path.exists():
            raise InputError(f"{path}: no such file or folder {WHERE_DATA}")
        files += sorted(path.glob("*.csv")) if path.is_dir() else [path]
    for path in files:
        found = peak(path, result)
        if found is None:
            result.skip(f"{path.name}:1", "no frame with success == 1", "no face")
            continue
        where, row, frame = found
        try:
            names = phrases(row, threshold)
        except ValueError:
            result.skip(where, "an AU presence value is not a finite number", "broken row")
            continue
        if not names:
            result.skip(where, f"no action unit at or above intensity {threshold}", "no expression")
            continue
        image = f"{path.stem}_{frame:06d}.png"
        result.add(where, task.query(subtitles.get(path.stem, "")), "; ".join(names), "images", image)
    return result

"""A table of clip → reason text (CSV, TSV or JSON list of objects) → eri records.

    python -m m2se.sources eri reasons.csv --out mosei_eri.json --media-prefix MOSEI/videos/ \\
        --utterance-column text
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from m2se.files import json_problem
from m2se.sources.common import (
    BuildResult,
    InputError,
    Inputs,
    check_choice,
    input_paths,
    progress,
    read_json,
    table_rows,
)
from m2se.tasks import TASKS

MEDIA = ("video", "frame")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clip-column", help="column with the clip name (default: clip)")
    parser.add_argument("--reason-column", help="column with the reason text (default: reason)")
    parser.add_argument(
        "--utterance-column", help="column with the transcript quoted in the query (optional)"
    )
    parser.add_argument("--media", choices=MEDIA, help="suffix for bare clip names (default: video)")


def rows(path: Path, columns: tuple[str, ...], result: BuildResult) -> Iterator[tuple[str, dict]]:
    if path.suffix != ".json":
        yield from table_rows(path, columns, result)
        return
    items = read_json(path)
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a JSON list of objects")
    for index, item in enumerate(progress(items, path.name)):
        where = f"{path.name}:{index}"
        missing = [c for c in columns if not isinstance(item, dict) or c not in item]
        if missing:
            result.skip(where, f"missing {', '.join(missing)}", "broken row")
            continue
        problem = json_problem(item, "item")
        if problem:
            result.skip(where, f"unusable value: {problem}", "bad value")
            continue
        # A number is fine as a clip name; a list or an object would reach the record as Python's repr.
        nested = [c for c in columns if isinstance(item[c], list | dict)]
        if nested:
            result.skip(where, f"{', '.join(nested)} must be text, not a list or an object", "broken row")
            continue
        yield where, {c: "" if item[c] is None else str(item[c]) for c in columns}


def build_eri(
    inputs: Inputs,
    *,
    clip_column: str = "clip",
    reason_column: str = "reason",
    utterance_column: str | None = None,
    media: Literal["video", "frame"] = "video",
    media_prefix: str = "",
    media_root: str | Path | None = None,
) -> BuildResult:
    """eri records from tables of clip → reason text: CSV, TSV (``.tsv``) or a JSON list of objects.

    The answer is the reason with its whitespace collapsed. The clip value is the medium's file name;
    one without a suffix gets ``.mp4`` (``media="video"``, a ``videos`` record) or ``.png``
    (``media="frame"``, an ``images`` record), after ``media_prefix``. With ``utterance_column`` the
    query quotes that transcript; without it the utterance is empty. (m2se's reader: EmoVerse released
    the eri records, not the table behind them.)

    Returns the records; a row with an empty clip or reason, a JSON item without the columns or holding
    a list, an object or a value JSON cannot carry, and with ``media_root`` a missing medium, are counted
    skips. Raises ``InputError`` when a file cannot be read or lacks a column, and ValueError for a
    ``media`` not listed above.
    """
    check_choice("media", media, MEDIA)
    result = BuildResult(media_prefix=media_prefix, media_root=media_root)
    task = TASKS["eri"]
    columns = tuple(c for c in (clip_column, reason_column, utterance_column) if c)
    key, suffix = ("videos", ".mp4") if media == "video" else ("images", ".png")
    for path in input_paths(inputs):
        for where, row in rows(path, columns, result):
            clip, reason = row[clip_column].strip(), " ".join(row[reason_column].split())
            if not clip or not reason:
                result.skip(where, "empty clip name or reason", "empty reason" if clip else "broken row")
                continue
            name = clip if Path(clip).suffix else clip + suffix
            utterance = row[utterance_column].strip() if utterance_column else ""
            result.add(where, task.query(utterance), reason, key, name)
    return result

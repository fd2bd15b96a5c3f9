"""A table of clip → reason text (CSV, TSV or JSON list of objects) → eri records.

    python -m m2se.data.build eri reasons.csv --out mosei_eri.json --media-prefix MOSEI/videos/ \\
        --utterance-column text

Columns ``clip`` and ``reason`` by default (``--clip-column``, ``--reason-column``). The clip value is
the medium's file name; one without a suffix gets ``.mp4`` (``--media video``) or ``.png``
(``--media frame``). With ``--utterance-column`` the query quotes that transcript; without it the
utterance is empty.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from m2se.data.build.common import BuildResult, InputError, progress, read_json, table_rows
from m2se.files import json_problem
from m2se.tasks import TASKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clip-column", default="clip", help="column with the clip name (default: clip)")
    parser.add_argument(
        "--reason-column", default="reason", help="column with the reason text (default: reason)"
    )
    parser.add_argument(
        "--utterance-column", help="column with the transcript quoted in the query (optional)"
    )
    parser.add_argument(
        "--media", choices=("video", "frame"), default="video", help="suffix for bare clip names"
    )


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


def run(args: argparse.Namespace) -> BuildResult:
    result = BuildResult.for_args(args)
    task = TASKS["eri"]
    columns = tuple(c for c in (args.clip_column, args.reason_column, args.utterance_column) if c)
    key, suffix = ("videos", ".mp4") if args.media == "video" else ("images", ".png")
    for path in args.inputs:
        for where, row in rows(path, columns, result):
            clip, reason = row[args.clip_column].strip(), " ".join(row[args.reason_column].split())
            if not clip or not reason:
                result.skip(where, "empty clip name or reason", "empty reason" if clip else "broken row")
                continue
            name = clip if Path(clip).suffix else clip + suffix
            utterance = row[args.utterance_column].strip() if args.utterance_column else ""
            result.add(where, task.query(utterance), reason, key, name)
    return result

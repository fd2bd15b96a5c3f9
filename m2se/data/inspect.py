"""Inspect EMT files: records per task, label distributions, media problems, length percentiles.

    python -m m2se.data.inspect FILE... [--media-root DIR] [--model DIR] [--decode] [--plot PNG] [--json] [--strict]

Exit status: 0 when every record parses (missing media are reported), 2 when a file or record is
malformed (each error names file and record), 1 under ``--strict`` when media are missing or corrupt.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from m2se.data.records import LoadResult, Record, RecordError, load_records
from m2se.files import dumps, first_line
from m2se.tasks import TASKS


def answer_summary(records: list[Record]) -> dict[str, dict[str, int]]:
    """Per task: label counts (classification), or counts that describe free answers."""
    out: dict[str, Counter] = {}
    for record in records:  # the task's answer format says what to count (labels, phrases, pairs, lengths)
        out.setdefault(record.task, Counter()).update(
            TASKS[record.task].answer.answer_counts(record.response)
        )
    return {name: dict(counts.most_common()) for name, counts in out.items()}


def media_problems(records: list[Record], decode: bool) -> tuple[list[str], list[str]]:
    """Missing media paths, and (with ``decode``) media that exist but do not decode."""
    missing, corrupt = [], []
    paths = sorted({(p, p in r.videos) for r in records for p in r.media})
    if decode:
        from m2se.data.video import MediaError, read_image, read_video
    for path, is_video in tqdm(paths, desc="decoding media", disable=not decode, file=sys.stderr):
        if not path.is_file():
            missing.append(str(path))
        elif decode:
            try:
                read_video(path, num_frames=1, size=None) if is_video else read_image(path)
            except MediaError as err:
                corrupt.append(str(err))
    return missing, corrupt


def text_lengths(records: list[Record], model: str | None) -> list[int]:
    """Query + response length of each record in tokens (with a model's tokenizer) or words."""
    texts = [r.query + " " + r.response for r in records]
    if model and texts:
        from m2se.data.vision import load_pretrained

        tokenizer = load_pretrained(model)
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return [len(t.split()) for t in texts]


def percentiles(lengths: list[int], unit: str) -> dict[str, object]:
    if not lengths:
        return {}
    p50, p90, p99 = np.percentile(lengths, [50, 90, 99]).round().astype(int).tolist()
    return {"unit": unit, "p50": p50, "p90": p90, "p99": p99, "max": max(lengths)}


def inspect_files(
    files: list[Path],
    media_root: Path | None,
    model: str | None,
    decode: bool,
    plot: Path | None = None,
    outside_ok: bool = False,
) -> dict:
    result, file_counts = LoadResult(), {}
    for path in files:  # duplicates within a file are errors; stage files may share records
        try:
            loaded = load_records(path, media_root, skip_errors=True, outside_ok=outside_ok)
        except RecordError as err:
            result.errors.append(str(err))
            result.skipped[err.reason] += 1
            continue
        file_counts[path.name] = len(loaded.records)
        result.extend(loaded)
    missing, corrupt = media_problems(result.records, decode)
    lengths, unit = text_lengths(result.records, model), "tokens" if model else "words"
    by_task: dict[str, list[int]] = {}
    for record, length in zip(result.records, lengths, strict=True):
        by_task.setdefault(record.task, []).append(length)
    answers = answer_summary(result.records)
    if plot is not None and result.records:  # nothing to draw: main says "no records"
        from m2se.data.plots import plot_inspection

        plot_inspection(answers, by_task, unit, plot)
    return {
        "records": len(result.records),
        "files": file_counts,
        "tasks": dict(Counter(r.task for r in result.records).most_common()),
        "answers": answers,
        "errors": result.errors,
        "skipped": dict(result.skipped),
        "missing_media": len(missing),
        "missing_examples": missing[:5],
        "corrupt_media": len(corrupt),
        "corrupt_examples": corrupt[:5],
        "length": percentiles(lengths, unit),
        "length_by_task": {task: percentiles(values, unit) for task, values in by_task.items()},
    }


def render(report: dict) -> str:
    lines = [f"{report['records']} records in {len(report['files'])} file(s)"]
    lines += [f"  {name}: {n}" for name, n in report["files"].items()]
    for task, n in report["tasks"].items():
        answers = report["answers"][task]
        shown = ", ".join(f"{k}: {v}" for k, v in list(answers.items())[:8])
        more = f", ... ({len(answers) - 8} more)" if len(answers) > 8 else ""
        lines.append(f"{task:<5} {n:>7}  {shown}{more}")
    if report["length"]:
        length = report["length"]
        lines.append("query+response {unit}: p50 {p50}  p90 {p90}  p99 {p99}  max {max}".format(**length))
    lines.append(f"missing media: {report['missing_media']}  corrupt media: {report['corrupt_media']}")
    lines += [f"  missing: {p}" for p in report["missing_examples"][:3]]
    lines += [f"  corrupt: {p}" for p in report["corrupt_examples"][:3]]
    if report["errors"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in report["skipped"].items())
        lines.append(f"{len(report['errors'])} malformed record(s) ({reasons}):")
        lines += [f"  {e}" for e in report["errors"][:20]]
        lines += [f"  ... {len(report['errors']) - 20} more"] if len(report["errors"]) > 20 else []
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m m2se.data.inspect", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="EMT files (JSON list or JSONL)")
    parser.add_argument(
        "--media-root", type=Path, help="where media paths resolve (default: each file's folder)"
    )
    parser.add_argument(
        "--model", help="model directory whose tokenizer counts tokens (default: count words)"
    )
    parser.add_argument("--decode", action="store_true", help="decode every medium to find corrupt ones")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--plot", type=Path, help="write answer distributions and length histograms to this PNG"
    )
    parser.add_argument(
        "--strict", action="store_true", help="missing or corrupt media make the exit status 1"
    )
    parser.add_argument(
        "--allow-media-outside-root",
        action="store_true",
        help="let media paths be absolute, hold .. or follow symlinks out of the media root",
    )
    args = parser.parse_args(argv)
    try:
        report = inspect_files(
            args.files, args.media_root, args.model, args.decode, args.plot, args.allow_media_outside_root
        )
    except (OSError, ValueError) as err:  # --model is not a model directory, --plot cannot be written
        print(f"error: {first_line(err)}", file=sys.stderr)
        return 2
    print(dumps(report, indent=2, ensure_ascii=False) if args.json else render(report))
    if not report["records"]:
        print(f"error: no records in {', '.join(map(str, args.files))}", file=sys.stderr)
        return 2
    if report["errors"]:
        return 2
    return 1 if args.strict and (report["missing_media"] or report["corrupt_media"]) else 0


if __name__ == "__main__":
    sys.exit(main())

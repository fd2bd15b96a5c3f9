"""Prediction files: rows of ``response`` (the model's answer) and ``label`` (gold), read and checked.

A JSON list or JSONL, as ``swift infer`` (ms-swift 2.x and 3.x), LLaMA-Factory or ``evaluate.py`` write
them (layouts: ``m2se.prediction_layouts``), read as ``{"query", "response", "label", "images" |
"videos" | "media", ...}``; other keys
are kept as metadata (``score``, ``conversation_ID``, a dialogue record's ``dataset``/``labels``/
``native``). Every problem reads ``file:record: reason`` (the record number as in ``m2se.data.records``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from m2se.data.records import MEDIA_KEYS, RecordError, raw_items
from m2se.files import json_problem
from m2se.prediction_layouts import LayoutError, as_swift2
from m2se.tasks import TASKS, infer_task
from m2se.tasks.prediction import Prediction

Duplicates = Literal["refuse", "dedupe"]
DUPLICATE_POLICIES = ("refuse", "dedupe")


@dataclass
class PredictionFile:
    """Rows by task; rows skipped (by task and reason) and duplicates dropped (by task).

    ``unassigned`` counts skipped rows whose task could not be told (``task=all`` and no readable query).
    """

    rows: dict[str, list[Prediction]] = field(default_factory=dict)
    skipped: dict[str, Counter] = field(default_factory=dict)
    duplicates: Counter = field(default_factory=Counter)
    unassigned: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def read_predictions(
    path: str | Path,
    task: str | None,
    skip_errors: bool = False,
    duplicates: Duplicates = "refuse",
) -> PredictionFile:
    """Read and check a prediction file; the task is ``task`` or inferred from each row's query.

    A malformed row raises RecordError (with ``skip_errors``: it is skipped and counted). Rows that
    repeat an earlier row's query, media and gold label (a dialogue row: also its turn) are refused,
    or dropped and counted with ``duplicates="dedupe"``. A file without rows raises RecordError.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"unknown duplicates policy {duplicates!r} (expected one of refuse, dedupe)")
    path, out, seen = Path(path), PredictionFile(), set()
    if path.is_dir():
        raise RecordError(
            str(path),
            "is a folder: give one prediction file (JSON list or JSONL), e.g. predictions/erc.jsonl",
            "missing file",
        )
    if not path.is_file():
        raise RecordError(str(path), "no such file", "missing file")
    for number, item in raw_items(path):
        where = f"{path.name}:{number}"
        if isinstance(item, dict):  # other tools' layouts read as ms-swift 2.x rows
            try:
                item = as_swift2(item)
            except LayoutError as err:
                item = RecordError(where, str(err), "unknown layout")
        name = task or _task_of(item)
        try:
            if isinstance(item, RecordError):
                raise item
            row = _row(item, where, name)
            key = _identity(name, row)
            if key in seen:
                if duplicates == "refuse":
                    raise RecordError(
                        where,
                        "duplicate row (same query, media and label as an earlier one; "
                        "duplicates=dedupe keeps the first)",
                        "duplicate",
                    )
                out.duplicates[name] += 1
                continue
            seen.add(key)
        except RecordError as err:
            if not skip_errors:
                raise
            counts = out.skipped.setdefault(name, Counter()) if name else out.unassigned
            counts[err.reason] += 1
            out.errors.append(str(err))
            continue
        out.rows.setdefault(name, []).append(row)
    if not out.rows:
        skipped = sum(sum(c.values()) for c in out.skipped.values()) + sum(out.unassigned.values())
        raise RecordError.no_records(path, skipped)
    return out


def _task_of(item: Any) -> str | None:
    query = item.get("query") if isinstance(item, dict) else None
    return infer_task(query) if isinstance(query, str) else None


def _identity(task: str, row: Prediction) -> tuple:
    """What makes two rows the same record: the query, the media (as paths: ``./a.mp4`` is ``a.mp4``),
    the gold answer as the task reads it (``Joy.`` is ``joy``) and a dialogue row's turn."""
    gold = TASKS[task].answer.identity(row.label)
    media = tuple(os.path.normpath(m) for m in row.media)
    turn = tuple(str(row.meta.get(k)) for k in ("dataset", "dialogue_id", "turn"))
    return task, row.query, media, gold, turn


def _row(item: Any, where: str, task: str | None) -> Prediction:
    if not isinstance(item, dict):
        raise RecordError(where, f"expected an object, got {type(item).__name__}", "not an object")
    problem = json_problem(item)
    if problem:
        raise RecordError(where, problem, "bad value")
    for key, role in (("response", "the prediction"), ("label", "the gold answer")):
        if not isinstance(item.get(key), str):
            got = "missing" if key not in item else f"a {type(item[key]).__name__}, not a string"
            raise RecordError(where, f"'{key}' ({role}) is {got}", f"bad {key}")
    query = item.get("query", "")
    if not isinstance(query, str):
        raise RecordError(where, f"'query' must be a string, got {type(query).__name__}", "bad query")
    if task is None:
        raise RecordError(where, "query fits no task (pass task=...)", "unknown task")
    media = []
    for key in (*MEDIA_KEYS, "media"):  # evaluate.py's own predictions/<task>.jsonl write "media"
        value = item.get(key)
        listed = [value] if isinstance(value, str) else value if value is not None else []
        if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
            raise RecordError(where, f"'{key}' must be a path or a list of paths", "bad media field")
        media += listed
    spec = TASKS[task]
    problem = spec.check_response(item["label"])
    if problem:
        fits = infer_task(query)
        hint = (
            f" (the row's query is a {fits} query: task=all scores each row as its own task)"
            if fits not in (None, task)
            else ""
        )
        raise RecordError(where, problem.replace("response", "gold label", 1) + hint, "unknown label")
    # evaluate.py's own predictions files keep the record's fields under "meta", beside "where".
    nested = item.get("meta", {})
    if not isinstance(nested, dict):
        raise RecordError(where, f"'meta' must be an object, got {type(nested).__name__}", "bad metadata")
    meta = {
        k: v
        for k, v in item.items()
        if k not in ("query", "response", "label", "media", "parsed", "where", "meta", *MEDIA_KEYS)
    }
    clash = sorted(k for k in meta.keys() & nested.keys() if meta[k] != nested[k])
    if clash:
        raise RecordError(where, f"{clash[0]!r} differs between the row and its 'meta'", "bad metadata")
    meta = {**nested, **meta}
    problem = spec.check_meta(meta)
    if problem:
        raise RecordError(where, problem, "bad metadata")
    return Prediction(task, where, query, item["label"], media, meta, item["response"])

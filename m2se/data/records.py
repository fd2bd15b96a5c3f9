"""EMT records: load and validate EmoVerse's ms-swift files (JSON list or JSONL) unchanged.

Errors read ``file:record: reason``; the record number is the list index for a JSON list and the
line number for JSONL, so it is what an editor or ``data[i]`` shows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m2se.files import json_problem, loads
from m2se.tasks import TASKS, infer_task

MEDIA_KEYS = ("images", "videos")
AUDIO_KEYS = ("audio", "features")  # a sound file, and {view: .npy feature file} (m2se.data.audio)
# Appended to "not there" errors: where the corpora and EmoVerse's released files come from.
WHERE_DATA = "(see docs/DATA.md)"


class RecordError(ValueError):
    """A malformed file or record; ``reason`` is a short category used for skip counts."""

    def __init__(self, where: str, message: str, reason: str):
        super().__init__(f"{where}: {message}")
        self.reason = reason

    @classmethod
    def no_records(cls, where: str | Path, skipped: Counter | int = 0) -> RecordError:
        """``where: no records`` (with how many were skipped): nothing to train on or score is an error."""
        n = skipped if isinstance(skipped, int) else sum(skipped.values())
        return cls(str(where), "no records" + (f" ({n} skipped)" if n else ""), "no records")


# Not frozen: Lightning's batch transfer rebuilds dataclasses field by field.
@dataclass
class Record:
    query: str
    response: str
    task: str
    images: tuple[Path, ...] = ()
    videos: tuple[Path, ...] = ()
    source: str = ""
    index: int = 0
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    audio: Path | None = None
    features: dict[str, Path] = field(default_factory=dict, compare=False)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.index}"

    @property
    def media(self) -> tuple[Path, ...]:
        return self.images + self.videos

    @property
    def key(self) -> tuple:
        """What makes two records the same: query, response and every input, plus the dialogue turn
        (text-only dialogue records of different conversations can read alike)."""
        turn = tuple(self.meta.get(k) for k in ("dataset", "dialogue_id", "turn"))
        return self.query, self.response, self.media, self.audio, tuple(sorted(self.features.items())), turn


@dataclass
class LoadResult:
    """Records that loaded, and what was skipped: counts by reason and one line per skip."""

    records: list[Record] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        self.records += other.records
        self.skipped += other.skipped
        self.errors += other.errors


def raw_items(path: Path) -> Iterator[tuple[int, Any]]:
    """(record number, parsed item or RecordError) for a JSON list or a JSONL file."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is no content
    except (OSError, UnicodeDecodeError) as err:
        raise RecordError(str(path), f"cannot read file ({err})", "unreadable file") from None
    if text.lstrip().startswith("["):
        try:
            items = loads(text)
        except json.JSONDecodeError as err:
            where = f"{path.name}:line {err.lineno}"
            raise RecordError(where, f"invalid JSON ({err.msg}, column {err.colno})", "bad json") from None
        yield from enumerate(items)
        return
    # Lines end at \n only: str.splitlines also splits at U+2028 and others, which JSON strings may hold.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, loads(line)
        except json.JSONDecodeError as err:
            yield lineno, RecordError(f"{path.name}:{lineno}", f"bad JSON line ({err.msg})", "bad json")


def media_path(root: Path, value: str, where: str, key: str, outside_ok: bool = False) -> Path:
    """``root / value``, refused (RecordError) when it leads outside ``root``: an absolute path, ``..``
    or a symlink resolving elsewhere, unless ``outside_ok`` (``data.allow_media_outside_root``)."""
    path = root / value
    if outside_ok:
        return path
    try:
        inside = not Path(value).is_absolute() and path.resolve().is_relative_to(root.resolve())
    except (OSError, ValueError, RuntimeError) as err:  # a NUL byte, a symlink loop
        raise RecordError(
            where, f"'{key}' path {value!r} cannot be resolved ({err})", "bad media field"
        ) from None
    if not inside:
        raise RecordError(
            where,
            f"'{key}' path {value!r} leads outside the media root {root} "
            "(allowed by data.allow_media_outside_root=true, or --allow-media-outside-root)",
            "media outside root",
        )
    return path


def _media(item: dict, root: Path, where: str, outside_ok: bool) -> dict[str, tuple[Path, ...]]:
    found = {}
    for key in MEDIA_KEYS:
        value = item.get(key)
        if value in (None, []):
            continue
        paths = [value] if isinstance(value, str) else value
        if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            raise RecordError(where, f"'{key}' must be a path or a list of paths", "bad media field")
        found[key] = tuple(media_path(root, p, where, key, outside_ok) for p in paths)
    return found


def _audio(item: dict, root: Path, where: str, outside_ok: bool) -> dict:
    found = {}
    if item.get("audio") not in (None, ""):
        if not isinstance(item["audio"], str):
            raise RecordError(where, "'audio' must be a path", "bad media field")
        found["audio"] = media_path(root, item["audio"], where, "audio", outside_ok)
    features = item.get("features")
    if features not in (None, {}):
        if not isinstance(features, dict) or not all(isinstance(p, str) and p for p in features.values()):
            raise RecordError(where, "'features' must be a mapping of view → path", "bad media field")
        found["features"] = {
            view: media_path(root, p, where, "features", outside_ok) for view, p in features.items()
        }
    return found


def parse_record(
    item: Any,
    where: str,
    source: str,
    index: int,
    root: Path,
    task: str | None,
    require_media: bool,
    outside_ok: bool = False,
    questions: bool = False,
) -> Record:
    """One raw JSON item → Record, or RecordError naming ``where`` and the reason.

    ``questions``: the record may lack a ``response`` (predict.py's inputs); its Record's response is "".
    """
    if not isinstance(item, dict):
        raise RecordError(where, f"expected an object, got {type(item).__name__}", "not an object")
    problem = json_problem(item)
    if problem:
        raise RecordError(where, problem, "bad value")
    unanswered = questions and item.get("response") is None
    if unanswered:
        item = {**item, "response": ""}
    for key in ("query", "response"):
        if not isinstance(item.get(key), str):
            got = "missing" if key not in item else f"not a string ({type(item[key]).__name__})"
            raise RecordError(where, f"'{key}' is {got}", f"missing {key}")
    media, extra = _media(item, root, where, outside_ok), _audio(item, root, where, outside_ok)
    name = task or infer_task(item["query"])
    if name is None:
        raise RecordError(where, "query fits no task (state the source's task explicitly)", "unknown task")
    if name not in TASKS:
        raise RecordError(where, f"unknown task {name!r} (known: {', '.join(TASKS)})", "unknown task")
    if require_media and TASKS[name].needs_media and not media and not extra:  # sound or features will do
        raise RecordError(where, "no media (expected an 'images' or 'videos' list)", "no media")
    problem = None if unanswered else TASKS[name].check_response(item["response"])
    if problem:
        raise RecordError(where, problem, TASKS[name].answer.bad_response)
    meta = {k: v for k, v in item.items() if k not in ("query", "response", *MEDIA_KEYS, *AUDIO_KEYS)}
    problem = TASKS[name].check_meta(meta)
    if problem:
        raise RecordError(where, problem, "bad metadata")
    return Record(
        item["query"], item["response"], name, source=source, index=index, meta=meta, **media, **extra
    )


def load_records(
    path: str | Path,
    media_root: str | Path | None = None,
    task: str | None = None,
    skip_errors: bool = False,
    require_media: bool = True,
    seen: set | None = None,
    outside_ok: bool = False,
) -> LoadResult:
    """Load one EMT file.

    ``media_root`` defaults to the file's folder; ``task`` overrides inference for every record.
    Media paths must stay inside it (see ``media_path``) unless ``outside_ok``.
    With ``skip_errors`` malformed records are skipped and counted in the result; otherwise the first
    one raises RecordError. Pass the same ``seen`` set to several calls to catch duplicates across files.
    """
    path = Path(path)
    root = Path(media_root) if media_root is not None else path.parent
    seen = set() if seen is None else seen
    result = LoadResult()
    if not path.is_file():
        raise RecordError(str(path), f"no such file {WHERE_DATA}", "missing file")
    for number, item in raw_items(path):
        where = f"{path.name}:{number}"
        try:
            if isinstance(item, RecordError):
                raise item
            record = parse_record(item, where, path.name, number, root, task, require_media, outside_ok)
            key = record.key
            if key in seen:
                raise RecordError(where, "duplicate record (same query, response and inputs)", "duplicate")
            seen.add(key)
        except RecordError as err:
            if not skip_errors:
                raise
            result.skipped[err.reason] += 1
            result.errors.append(str(err))
            continue
        result.records.append(record)
    return result

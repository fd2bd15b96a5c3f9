"""predict.py's inputs as records: a video or image, a folder, a glob, or an EMT/JSONL file of queries.

A record without ``response`` is a question, not an error. Media files get the task's own query
(``Task.query``, the prompt training data is built with) around their utterance: ``text=`` when given,
else a sidecar text file beside the clip (``clip.mp4`` → ``clip.txt``), else empty.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from m2se.data.records import Record, RecordError, parse_record, raw_items
from m2se.tasks import TASKS

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
RECORD_SUFFIXES = (".json", ".jsonl")
SIDECAR = ".txt"


@dataclass
class Questions:
    """``records`` to answer; ``errors``: (input, message) for inputs that cannot be asked (each becomes
    an output line with ``error``); ``ignored``: files of a folder or glob that are neither media nor a
    sidecar; ``names``: record ``where`` → the input as output lines name it (the media path)."""

    records: list[Record] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)


def read_questions(
    inputs: str,
    task: str | None,
    text: str | None = None,
    media_root: str | None = None,
    outside_ok: bool = False,
) -> Questions:
    """The records ``inputs`` asks about, for ``task`` (None: inferred from each record file query).

    ``inputs``: a video or image file, a folder (its media files, not recursive), a glob pattern
    (``**`` recurses) or a ``.json``/``.jsonl`` record file whose media paths are relative to
    ``media_root`` (default: the file's folder). ValueError (one line) when nothing matches, a media
    input has no ``task``, or the task's queries need more than one utterance (ECPE: a record file).
    """
    path = Path(inputs).expanduser()
    if path.is_file() and path.suffix.lower() in RECORD_SUFFIXES:
        return _record_file(path, task, media_root, outside_ok)
    if path.is_dir():
        files = sorted(path.iterdir())
        if not files:
            raise ValueError(f"inputs={inputs}: empty folder")
    elif path.exists() or path.is_symlink():  # a broken link or a loop is answered with its error
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        if not files:
            raise ValueError(f"inputs={inputs}: no such file or folder, and no file matches it as a glob")
    if task is None:
        raise ValueError("media inputs need task=NAME (the query is built with the task's prompt)")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (expected one of {', '.join(TASKS)})")
    if TASKS[task].queries_built_by is not None:
        raise ValueError(
            f"task {task}'s queries are built by {TASKS[task].queries_built_by}: give inputs=FILE.jsonl "
            "with a query per record"
        )
    questions = Questions()
    media = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES]
    # Named like media but no file to read (a folder, a broken link, a link loop): a line with its error.
    questions.errors = [(str(p), f"{p}: not a readable file (a folder, a broken link or a link loop)")
                        for p in media if not p.is_file()]  # fmt: skip
    media = [p for p in media if p.is_file()]
    questions.ignored = [p for p in files if p.is_file() and p not in media and p.suffix.lower() != SIDECAR]
    if not media and not questions.errors:
        raise ValueError(
            f"inputs={inputs}: no video or image files (known: {', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)})"
        )
    for index, file in enumerate(media):
        try:
            utterance = text if text is not None else _sidecar(file)
        except ValueError as err:
            questions.errors.append((str(file), str(err)))
            continue
        kind = "videos" if file.suffix.lower() in VIDEO_SUFFIXES else "images"
        record = Record(
            TASKS[task].query(utterance), "", task, source=str(file), index=index, **{kind: (file,)}
        )
        questions.records.append(record)
        questions.names[record.where] = str(file)
    return questions


def _sidecar(media: Path) -> str:
    """The utterance in ``clip.txt`` beside ``clip.mp4`` (stripped), or "" when there is none."""
    sidecar = media.with_suffix(SIDECAR)
    if not sidecar.exists():
        return ""
    if not sidecar.is_file():
        raise ValueError(f"{sidecar}: the text sidecar is not a file")
    try:
        return sidecar.read_text(encoding="utf-8-sig").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{sidecar}: unreadable text sidecar ({err})") from None


def _record_file(path: Path, task: str | None, media_root: str | None, outside_ok: bool) -> Questions:
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r} (expected one of {', '.join(TASKS)})")
    root = Path(media_root).expanduser() if media_root else path.parent
    questions = Questions()
    for number, item in raw_items(path):
        where = f"{path.name}:{number}"
        try:
            if isinstance(item, RecordError):
                raise item
            record = parse_record(
                item, where, path.name, number, root, task, True, outside_ok, questions=True
            )
        except RecordError as err:
            questions.errors.append((where, str(err).removeprefix(f"{where}: ")))
            continue
        questions.records.append(record)
    if not questions.records and not questions.errors:
        raise ValueError(f"inputs={path}: no records")
    return questions

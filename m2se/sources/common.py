"""What every builder shares: its inputs, reading tables, the result, media checks, output and summary.

Rows are reported as ``file:row: reason`` where ``row`` is the line number in the file (the header is
line 1), or the item index for JSON inputs. A fatal input problem (missing file, missing columns, a file
that is not CSV or JSON) is an ``InputError``; everything else is a counted skip. Whatever the input, a
written file is JSON that training takes: no NaN/Infinity, no unpaired surrogate, no record twice.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from m2se.data.records import WHERE_DATA
from m2se.files import dumps, first_line, json_problem, loads, write_json

MAX_PROBLEMS_SHOWN = 10
Inputs = str | Path | Sequence[str | Path]  # one input file, or several


class InputError(ValueError):
    """An input that cannot be built at all; the message reads ``file: reason``."""


def one_line(text: str) -> str:
    """``text`` as one printable line: line breaks become spaces, unpaired surrogates (a JSON "\\ud800",
    an undecodable file name) their ``\\ud800`` escape, so printing it cannot fail."""
    return " ".join(text.encode("utf-8", "backslashreplace").decode("utf-8").splitlines())


_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def finite(text: str) -> float:
    """``float(text)``, with NaN and infinities refused (ValueError) like any other non-number:
    ``float`` reads ``nan``, ``inf`` and ``1e400``, which are no score and no JSON."""
    if not _DECIMAL.fullmatch(text.strip()):  # float() also reads "1_0" and non-ASCII digits ("١")
        raise ValueError(f"{text!r} is not a decimal number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def whole_number(text: str) -> int | None:
    """``text`` as a non-negative integer, or None: ASCII digits only (``"²"`` passes ``str.isdigit`` and
    ``"١"`` is read by ``int``, but neither is an id) and few enough for ``int`` to convert."""
    text = text.strip()
    if not (text.isascii() and text.isdecimal()):
        return None
    try:
        return int(text)
    except ValueError:  # over sys.get_int_max_str_digits() digits
        return None


def _cp1252_fallback(err: UnicodeDecodeError) -> tuple[str, int]:
    # MELD's CSVs are UTF-8/ASCII with stray cp1252 bytes (0x92 for ’): decode just those bytes.
    bad = err.object[err.start : err.end]
    return bad.decode("cp1252", errors="replace") if len(bad) else "", err.end


codecs.register_error("m2se-cp1252", _cp1252_fallback)


def decode(data: bytes) -> str:
    """UTF-8, with any byte that is not valid UTF-8 read as cp1252 (undefined cp1252 bytes → U+FFFD)."""
    return data.decode("utf-8-sig", errors="m2se-cp1252")


def read_text(path: Path) -> str:
    try:
        return decode(Path(path).read_bytes())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file {WHERE_DATA}") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None


def table_rows(
    path: Path, required: Iterable[str], result: BuildResult
) -> Iterator[tuple[str, dict[str, str]]]:
    """(``file:line``, row) for each row of a CSV or TSV file, under a progress bar.

    The delimiter is a tab for ``.tsv`` files, a comma otherwise; column names are stripped of spaces
    (OpenFace writes `` AU01_r``). Missing ``required`` columns raise InputError; rows with too few
    fields are counted skips.
    """
    reader = csv.reader(
        io.StringIO(read_text(path), newline=""), delimiter="\t" if path.suffix == ".tsv" else ","
    )
    lines = _parsed(reader, path)
    header = [name.strip() for name in next(lines, [])]
    missing = [name for name in required if name not in header]
    if missing:
        found = ", ".join(header) or "none"
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (found: {found})")
    for values in progress(lines, path.name):
        where = f"{path.name}:{reader.line_num}"
        if len(values) < len(header):
            if any(v.strip() for v in values):
                result.skip(
                    where, f"broken row: {len(values)} field(s), expected {len(header)}", "broken row"
                )
            continue
        yield where, dict(zip(header, values, strict=False))


def _parsed(reader: Iterator[list[str]], path: Path) -> Iterator[list[str]]:
    # The parser's own errors (a field over csv.field_size_limit(), ...) leave it mid-field: what it
    # read next would be rows cut at random, so the file stops here, naming the line.
    try:
        yield from reader
    except csv.Error as err:
        raise InputError(f"{path}:{reader.line_num}: not a readable table ({first_line(err)})") from None


def parse_json(text: str) -> Any:
    """``text`` parsed as JSON; ValueError with a one-line reason (bad syntax, runaway nesting, a number
    with more digits than Python converts) when it cannot be."""
    try:
        return loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{err.msg}, line {err.lineno}") from None
    except ValueError as err:  # int() refusing a 5000-digit number
        raise ValueError(first_line(err)) from None


def read_json(path: Path) -> Any:
    try:
        return parse_json(read_text(path))
    except ValueError as err:
        raise InputError(f"{path}: invalid JSON ({err})") from None


@dataclass
class BuildResult:
    """Built EMT records, skips counted by reason, and one ``file:row: reason`` line per skip."""

    records: list[dict] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    media_prefix: str = ""
    media_root: Path | None = None
    seen: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.media_prefix, str):
            raise TypeError(f"media_prefix must be a string, got {self.media_prefix!r}"[:200])
        if self.media_root is not None and not isinstance(self.media_root, str | Path):
            raise TypeError(f"media_root must be a path, got {self.media_root!r}"[:200])
        self.media_root = None if self.media_root is None else Path(self.media_root)
        if self.media_root is not None and not self.media_root.is_dir():  # else every row: "missing media"
            raise InputError(f"{self.media_root}: media root is not a folder {WHERE_DATA}")

    def skip(self, where: str, message: str, reason: str) -> None:
        self.skipped[reason] += 1
        self.problems.append(one_line(f"{where}: {message}"))

    def keep(self, where: str, record: dict) -> bool:
        """Append ``record`` unless it holds a value JSON or a tokenizer cannot take (see
        ``json_problem``) or training would drop it as a duplicate; False (a counted skip) if not."""
        problem = json_problem(record)
        if problem:
            self.skip(where, f"unusable value: {problem}", "bad value")
            return False
        key = identity(record)
        if key in self.seen:
            self.skip(where, "same query, response and media as an earlier record", "duplicate")
            return False
        self.seen.add(key)
        self.records.append(record)
        return True

    def add(self, where: str, query: str, response: str, media_key: str, name: str, **extra: Any) -> bool:
        """Append one record whose medium is ``name`` (checked under ``media_root``); False if skipped."""
        if "\0" in name or Path(name).is_absolute() or ".." in Path(name).parts:
            # Training refuses media outside its root; a name must stay below the media prefix.
            self.skip(where, f"media name {name!r} leaves the media folder", "bad media name")
            return False
        if self.media_root is not None and not (self.media_root / name).is_file():
            self.skip(where, f"missing media {self.media_root / name}", "missing media")
            return False
        record = {"query": query, "response": response, media_key: [self.media_prefix + name], **extra}
        return self.keep(where, record)


def identity(record: dict) -> str:
    """What makes two records one for training (``m2se.data.records.Record.key``): query, response,
    every input (images and videos together) and the dialogue turn; other fields (a score) do not count."""
    media = [*record.get("images", []), *record.get("videos", [])]
    turn = [record.get(k) for k in ("dataset", "dialogue_id", "turn")]
    inputs = [media, record.get("audio"), record.get("features")]
    return dumps([record.get("query"), record.get("response"), inputs, turn], sort_keys=True)


def input_paths(inputs: Inputs) -> list[Path]:
    """The input files of a builder: one path, or a sequence of them (a bare string is one path)."""
    if isinstance(inputs, str | Path):
        return [Path(inputs)]
    if (
        not isinstance(inputs, Sequence)
        or isinstance(inputs, bytes)
        or not all(isinstance(p, str | Path) for p in inputs)
    ):
        raise TypeError(f"inputs must be a path or a sequence of paths, got {inputs!r}"[:200])
    return [Path(p) for p in inputs]


def check_choice(name: str, value: object, choices: Collection[str]) -> None:
    """ValueError unless ``value`` is one of ``choices``: the command line's argparse checks this, a
    Python caller's typo must not quietly pick the other branch."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")


def progress(items: Iterable, desc: str, total: int | None = None) -> Iterable:
    """A tqdm bar on stderr (hidden when stderr is not a terminal)."""
    return tqdm(items, desc=desc, total=total, file=sys.stderr, disable=None, leave=False)


def write_records(path: Path, records: list[dict]) -> None:
    """A JSON list like the released files (UTF-8, non-ASCII kept, 4-space indent), written whole: a
    failed write leaves ``path`` as it was and raises OSError naming it."""
    write_json(path, records, ensure_ascii=False, indent=4)


def task_of(record: dict) -> str:
    from m2se.tasks import infer_task

    return infer_task(record["query"]) or "?"


def summary(result: BuildResult, out: Path | None) -> str:
    """Records per task, skips by reason and the first problems."""
    tasks = Counter(task_of(r) for r in result.records)
    per_task = ", ".join(f"{t} {n}" for t, n in sorted(tasks.items())) or "none"
    target = f" to {one_line(str(out))}" if out is not None else " (nothing written)"
    lines = [f"{len(result.records)} record(s){target}: {per_task}"]
    if result.skipped:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in result.skipped.most_common())
        lines.append(f"skipped {sum(result.skipped.values())} row(s): {reasons}")
        lines += [f"  {p}" for p in result.problems[:MAX_PROBLEMS_SHOWN]]
        more = len(result.problems) - MAX_PROBLEMS_SHOWN
        lines += [f"  ... {more} more"] if more > 0 else []
    return "\n".join(lines)

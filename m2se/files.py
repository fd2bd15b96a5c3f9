"""Writing files and folders whole: beside the target, then one rename, so that a kill or a full disk
leaves the previous version intact and an error that names the path. What a killed writer leaves
beside the target (``.NAME.<pid>-<hex>.tmp``) is removed by the next write of the same target."""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def first_line(err: BaseException) -> str:
    """An exception's first message line (its type name when it has no message)."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _beside(path: Path, suffix: str) -> Path:
    # Not tempfile: its files and folders are private (0600/0700); these get the umask's permissions.
    return path.parent / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def _named(err: OSError, path: Path) -> OSError:
    """``err`` naming ``path`` (not the temporary beside it), so its one line says which write failed."""
    return OSError(err.errno, err.strerror or first_line(err), str(path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _clean_leftovers(path: Path) -> None:
    """Remove what a writer of ``path`` killed mid-write left beside it (its process is gone); if it
    died between moving the old folder aside and moving the new one in, put the old one back."""
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*-*.*"):
        pid = leftover.name[len(path.name) + 2 :].split("-", 1)[0]
        if not pid.isascii() or not pid.isdigit() or _alive(int(pid)):
            continue
        if leftover.suffix == ".old" and not path.exists():
            os.replace(leftover, path)
        elif leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # e.g. a file where the folder should be: name the folder
        raise _named(err, path.parent) from None


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On any failure the temporary file is removed and ``path`` keeps its previous contents; an
    OSError is re-raised naming ``path``.
    """
    path = Path(path)
    tmp = _beside(path, ".tmp")
    _make_parent(path)
    try:
        _clean_leftovers(path)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise _named(err, path) from None
    finally:
        with contextlib.suppress(OSError):  # the error that matters is the one above
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty folder beside ``path``; on success it takes ``path``'s place as a whole.

    Readers see the old folder or the new one, never a mix: the old one is renamed aside, the new
    one renamed in, then the old one removed. On failure the staged folder is removed and ``path``
    is left as it was; an OSError is re-raised naming ``path``.
    """
    path = Path(path)
    staged, old = _beside(path, ".tmp"), _beside(path, ".old")
    _make_parent(path)
    try:
        _clean_leftovers(path)
        staged.mkdir()
        yield staged
        if path.exists():
            os.replace(path, old)
        os.replace(staged, path)
    except OSError as err:
        if old.exists() and not path.exists():  # put the previous folder back
            os.replace(old, path)
        raise _named(err, path) from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


# JSON that every reader and writer of the project can take: Python's json reads NaN/Infinity (not
# JSON) and lone UTF-16 surrogates, and nesting that later code recursing into it cannot handle.
MAX_JSON_DEPTH = 32


def json_problem(value: object, name: str = "record") -> str | None:
    """Why a parsed JSON value cannot be used, or None: nested deeper than ``MAX_JSON_DEPTH``, a
    non-finite number (NaN/Infinity are not JSON), or a string with an unpaired surrogate (no UTF-8
    form; tokenizers and writers fail on it). ``name`` starts the path the message shows."""
    stack = [(value, name, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"{name} nests deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, float) and not math.isfinite(item):
            return f"{where} is {item} (not a finite number)"
        if isinstance(item, str) and _unpaired_surrogate(item):
            return f"{where} has an unpaired UTF-16 surrogate"
        if isinstance(item, dict):
            for key, child in item.items():
                if _unpaired_surrogate(str(key)):
                    return f"a key of {where} has an unpaired UTF-16 surrogate"
                stack.append((child, f"{where}.{key}" if depth else str(key), depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
    return None


def _unpaired_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"duplicate key {twice!r} in one object (JSON readers would keep either value)")
    return dict(pairs)


def loads(text: str):
    """``json.loads``, with nesting too deep for Python's parser, an integer too long for it, or a key
    given twice in one object (Python keeps the last value, other tools the first), raised as a
    JSONDecodeError too."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply to parse", text, 0) from None
    except ValueError as err:  # a duplicate key, or an integer of more digits than Python converts
        raise json.JSONDecodeError(first_line(err), text, 0) from None


def dumps(value: object, **kwargs) -> str:
    """``json.dumps`` that refuses NaN and Infinity (ValueError) instead of writing non-JSON."""
    return json.dumps(value, allow_nan=False, **kwargs)


def write_json(path: str | Path, value: object, **kwargs) -> None:
    """``value`` as JSON (see ``dumps``) plus a newline, written whole (see ``atomic_file``)."""
    text = dumps(value, **kwargs) + "\n"
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json_object(path: str | Path) -> dict:
    """A JSON file holding an object (a model's config.json, an adapter's config); ValueError naming
    the file when it cannot be read, is not JSON or holds something else."""
    try:
        value = loads(Path(path).read_text(encoding="utf-8-sig"))  # a byte-order mark is no content
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"{path}: not readable JSON ({first_line(err)})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, found a {type(value).__name__}")
    return value

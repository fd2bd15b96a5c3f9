"""Writing files and folders whole: beside the target, then one rename, so that a kill or a full disk
leaves the previous version intact, no orphan behind, and an error that names the path."""

from __future__ import annotations

import contextlib
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
    """``err`` with ``path`` as its filename, so its one-line message says where the write failed."""
    if err.filename:
        return err
    return OSError(err.errno, err.strerror or str(err), str(path))


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On any failure the temporary file is removed and ``path`` keeps its previous contents; an
    OSError is re-raised naming ``path``.
    """
    path = Path(path)
    tmp = _beside(path, ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise _named(err, path) from None
    finally:
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
    try:
        staged.mkdir(parents=True)
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

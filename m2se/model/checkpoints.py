"""Checkpoint files that never execute code and are never half-written.

- ``load_checkpoint`` reads with ``torch.load(weights_only=True)``: tensors, numbers, strings and
  containers only, so a file carrying a pickled payload (``os.system`` in ``__reduce__``) is refused
  with one line naming it instead of running it. Every reader of ``.ckpt``/``.bin`` files uses it, and
  ``SafeCheckpointIO`` makes Lightning's ``resume=`` use it too.
- ``atomic_file`` / ``staged_dir`` write next to the target (same filesystem, so the final rename
  is atomic), fsync, then rename over it: a kill or a full disk leaves the previous file or folder
  whole and no orphan behind. A failed write names the path (``[Errno 28] ...: 'path'``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, refused as unsafe, or not an m2se checkpoint."""


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """A ``torch.save`` file's contents, loaded without executing code.

    Raises FileNotFoundError when ``path`` is missing and ``CheckpointError`` (one line naming the
    file) when it is not a torch file or holds objects other than tensors and plain containers.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        loaded = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message names what it refused: "... unsupported GLOBAL posix.system whose module ..."
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found is None:
            detail = [line.strip() for line in str(err).splitlines() if "Unsupported" in line]
            raise CheckpointError(
                f"{path}: not a readable checkpoint ({(detail or ['not a torch file'])[0]})"
            ) from None
        raise CheckpointError(
            f"{path}: refused: it holds a Python object ({found.group(1)}) that could execute code when "
            "loaded; m2se checkpoints hold only tensors and plain data"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({_first_line(err)})") from None
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(loaded).__name__}, not a dict)")
    return loaded


def _first_line(err: BaseException) -> str:
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


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with the guarantees above: ``resume=`` loads with ``weights_only``,
    and ``last.ckpt`` is written beside itself and renamed (Lightning stages it in the system temp
    folder, which is a copy, not a rename, across filesystems, and leaves an orphan when killed)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        with atomic_file(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return load_checkpoint(path, map_location=map_location or "cpu")


def rng_state() -> dict:
    """The global random state (torch, CUDA, numpy, Python) as plain data that ``weights_only`` loads."""
    states = _collect_rng_states(include_cuda=True)
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    states["numpy"] = [kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(gauss)]
    states["python"] = list(states["python"])
    return states


def set_rng_state(states: dict) -> None:
    """Restore what ``rng_state`` returned; CUDA states only where as many devices are visible."""
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    numpy_state = (kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss)
    cuda = states.get("torch.cuda") or []
    plain = {"torch": states["torch"], "python": tuple(states["python"]), "numpy": numpy_state}
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        plain["torch.cuda"] = cuda
    _set_rng_states(plain)

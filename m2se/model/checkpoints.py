"""Checkpoint files that never execute code and are never half-written.

- ``load_checkpoint`` reads with ``torch.load(weights_only=True)``: tensors, numbers, strings and
  containers only, so a file carrying a pickled payload (``os.system`` in ``__reduce__``) is refused
  with one line naming it instead of running it. Every reader of ``.ckpt``/``.bin`` files uses it, and
  ``SafeCheckpointIO`` makes Lightning's ``resume=`` use it too.
- ``SafeCheckpointIO`` saves through ``m2se.files.atomic_file``: beside the target, then renamed.
- ``rng_state`` / ``set_rng_state``: the random state as plain data, for exact resumes.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import struct
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from safetensors.torch import load_file

from m2se import files
from m2se.files import atomic_file, first_line


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, refused as unsafe, or not an m2se checkpoint."""


def load_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict:
    """A ``torch.save`` file's contents, loaded without executing code; ``mmap``: tensors stay on disk
    until read (for a look at the plain data beside them).

    Raises FileNotFoundError when ``path`` is missing and ``CheckpointError`` (one line naming the
    file) when it is not a torch file or holds objects other than tensors and plain containers.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol N": said below if it cannot load
            warnings.simplefilter("ignore", UserWarning)
            loaded = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
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
    except (
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        KeyError,
        IndexError,
        TypeError,
        struct.error,
    ) as err:
        # Bytes that are no pickle reach the unpickler's own lookups (KeyError, IndexError, ...).
        detail = first_line(err)[:160] or type(err).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({detail})") from None
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(loaded).__name__}, not a dict)")
    return loaded


def check_tensors(tensors, where: str) -> dict[str, torch.Tensor]:
    """``tensors`` if it maps names to finite tensors; else CheckpointError naming ``where`` and the key."""
    if not isinstance(tensors, dict):
        raise CheckpointError(f"{where}: expected a name -> tensor map, found a {type(tensors).__name__}")
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{where}: {name} is a {type(value).__name__}, not a tensor")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{where}: {name} holds NaN/inf; refusing to train or evaluate from it")
    return tensors


def read_json_object(path: Path) -> dict:
    """A JSON file holding an object (an adapter's or audio config); CheckpointError naming it otherwise."""
    try:
        return files.read_json_object(path)
    except ValueError as err:
        raise CheckpointError(str(err)) from None


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors, checked finite; CheckpointError naming it otherwise."""
    try:
        tensors = load_file(path)
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: not readable safetensors ({first_line(err)[:160]})") from None
    return check_tensors(tensors, str(path))


def read_m2se_checkpoint(path: str | Path) -> dict:
    """An ``M2SEModule`` checkpoint, checked: its ``m2se`` entry (stage, merged adapters, LoRA config)
    and ``state_dict`` are well-formed and every tensor is finite. Raises CheckpointError naming the
    file and what is wrong."""
    checkpoint = load_checkpoint(path)
    saved = checkpoint.get("m2se")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: not an m2se checkpoint (no 'm2se' entry)")
    for key, kind in (("stage", int), ("merged", list), ("lora_config", dict)):
        if not isinstance(saved.get(key), kind):
            raise CheckpointError(f"{path}: not an m2se checkpoint ('m2se' has no {key} {kind.__name__})")
    check_tensors(checkpoint.get("state_dict"), f"{path} (state_dict)")
    for i, adapter in enumerate(saved["merged"]):
        if not isinstance(adapter, dict) or not isinstance(adapter.get("config"), dict):
            raise CheckpointError(f"{path}: merged adapter {i} is not a {{config, tensors}} entry")
        check_tensors(adapter.get("tensors"), f"{path} (merged adapter {i})")
    return checkpoint


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
        if Path(path).is_dir():
            raise CheckpointError(
                f"{path}: a folder; resume= takes a training checkpoint (checkpoints/last.ckpt), and an "
                "adapter folder starts a new stage with ckpt="
            )
        checkpoint = read_m2se_checkpoint(path)
        if "pytorch-lightning_version" not in checkpoint or "loops" not in checkpoint:
            raise CheckpointError(
                f"{path}: holds weights but no training state to resume; start from it with ckpt="
            )
        return checkpoint


def plain_data(value):
    """``value`` with dataclasses and mappings turned into dicts and sequences into lists: what a
    checkpoint may hold (hyperparameters) and still load with ``weights_only``."""
    if dataclasses.is_dataclass(value):
        return plain_data(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    return value


# LoRA settings that shape the trained tensors: a resumed run must have them as the interrupted one.
_LORA_KEYS = ("r", "lora_alpha", "target_modules", "modules_to_save", "use_dora", "use_rslora")


def check_resumable(saved: dict, merged_now: list, lora_now: dict) -> None:
    """Raise CheckpointError unless a checkpoint's ``m2se`` entry can continue in a module built with
    ``merged_now`` earlier-stage adapters (``ckpt=``) and LoRA config ``lora_now``."""
    if len(saved["merged"]) < len(merged_now):
        raise CheckpointError(
            f"resume: the checkpoint is a stage-{saved['stage']} run with {len(saved['merged'])} earlier "
            f"stage(s) merged, but this config merges {len(merged_now)} (ckpt=); resume with the command "
            "that started the run"
        )
    lora_then = saved["lora_config"]
    differ = [
        f"{key} {lora_then.get(key)!r} -> {lora_now.get(key)!r}"
        for key in _LORA_KEYS
        if lora_then.get(key) != lora_now.get(key)
    ]
    if differ:
        raise CheckpointError(
            f"resume: the LoRA settings differ from the interrupted run's ({'; '.join(differ)}); resume "
            "with the module.lora settings that run had"
        )


def check_fit(trained: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> None:
    """Raise CheckpointError unless a checkpoint's ``tensors`` are exactly a module's ``trained`` ones."""
    misfit = sorted(set(trained) ^ set(tensors)) or [
        n for n, p in trained.items() if tensors[n].shape != p.shape
    ]
    if misfit:
        raise CheckpointError(
            f"resume: the checkpoint's trained tensors do not fit this model (e.g. {misfit[0]}); resume "
            "with the model and settings of the interrupted run"
        )


def upgrade_loop_state(checkpoint: dict) -> bool:
    """Drop the sampler position older m2se versions kept in Lightning's loop state (it lives in the
    DataModule's state now, and the loop would refuse it). True when there was one."""
    loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
    if not any("batches_yielded" in state for state in loop.get("combined_loader", [])):
        return False
    loop["combined_loader"] = [{}]
    return True


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

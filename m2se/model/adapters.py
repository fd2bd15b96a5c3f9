"""LoRA adapters as data: read them from a checkpoint or a PEFT folder, merge them, write one folder.

EmoVerse's stage two merges the stage-one LoRA into the base and trains a fresh one. The sum of
two LoRAs is itself one LoRA of rank r1 + r2 (A stacked, B side by side, each B scaled by its
alpha / r), so the adapter folder of a later stage holds every stage and loads on the ORIGINAL base
with plain ``PeftModel.from_pretrained(base, folder)``.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import save_file
from torch import nn

from m2se.files import dumps, first_line, staged_dir
from m2se.model.checkpoints import (
    CheckpointError,
    check_tensors,
    load_checkpoint,
    read_json_object,
    read_m2se_checkpoint,
    read_safetensors,
)
from m2se.model.exported import DEFAULT_BACKBONE, read_export
from m2se.model.exported import MARK as EXPORT_MARK


@dataclass
class Adapter:
    """One trained LoRA: its config (``LoraConfig.to_dict()``) and tensors in PEFT's saved-key format."""

    config: dict
    tensors: dict[str, torch.Tensor]
    source: str = ""  # the file it was read from, for error messages

    @classmethod
    def of(cls, model: PeftModel) -> Adapter:
        tensors = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}
        return cls(config_of(model), tensors)

    def lora_config(self) -> LoraConfig:
        where = self.source or "adapter"
        try:
            config = LoraConfig(
                **{k: v for k, v in self.config.items() if k in LoraConfig.__dataclass_fields__}
            )
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{where}: invalid LoRA config ({first_line(err)})") from None
        if not isinstance(config.r, int) or config.r <= 0 or not config.target_modules:
            raise CheckpointError(
                f"{where}: invalid LoRA config (needs a positive integer r and target_modules)"
            )
        # A NaN or infinite scale would merge NaN into the base and train on silently.
        alpha, dropout = config.lora_alpha, config.lora_dropout
        if not _finite(alpha) or alpha <= 0 or not _finite(dropout) or not 0 <= dropout < 1:
            raise CheckpointError(
                f"{where}: invalid LoRA config (lora_alpha {alpha!r} must be a finite number > 0, "
                f"lora_dropout {dropout!r} in [0, 1))"
            )
        return config

    def state(self) -> dict:
        return {"config": self.config, "tensors": self.tensors}  # no source: checkpoints move


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def config_of(model: PeftModel) -> dict:
    """The live LoRA's config as plain data (``LoraConfig.to_dict()`` holds sets and enums; checkpoints
    and JSON want lists and strings), without copying its tensors."""
    config = model.peft_config["default"].to_dict()
    return json.loads(dumps(config, default=lambda v: sorted(v) if isinstance(v, set) else str(v)))


def merge(base: nn.Module, adapters: list[Adapter]) -> nn.Module:
    """``base`` with each adapter merged into its weights, in order; the result is frozen.

    Raises CheckpointError naming the adapter's file when its tensors do not fit the model (other
    shapes, modules the model lacks, or LoRA tensors missing).
    """
    for adapter in adapters:
        model = get_peft_model(base, adapter.lora_config())
        where = adapter.source or "adapter"
        try:
            result = set_peft_model_state_dict(model, adapter.tensors)
        except RuntimeError as err:  # size mismatch
            detail = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), "")
            raise CheckpointError(
                f"{where}: its LoRA does not fit this model ({detail or first_line(err)})"
            ) from None
        missing = [k for k in result.missing_keys if ".lora_" in k]
        if result.unexpected_keys or missing:
            bad = (result.unexpected_keys or missing)[0]
            what = (
                "tensors for modules this model lacks" if result.unexpected_keys else "missing LoRA tensors"
            )
            raise CheckpointError(f"{where}: its LoRA does not fit this model ({what}, e.g. {bad})")
        base = model.merge_and_unload()
    base.requires_grad_(False)
    return base


def _lightning_to_peft_key(key: str) -> str | None:
    # "model.base_model.model.X.lora_A.default.weight" -> "base_model.model.X.lora_A.weight"
    if not key.startswith("model.base_model."):
        return None
    key = key[len("model.") :]
    key = key.replace(".modules_to_save.default.", ".")
    return re.sub(r"\.(lora_[AB]|lora_embedding_[AB])\.default\.", r".\1.", key)


def read_adapters(path: str | Path) -> list[Adapter]:
    """Every adapter a stage produced, oldest first: a PEFT folder, or an ``M2SEModule`` checkpoint.
    An export folder (``python -m m2se.export``) has none: its adapters are merged into its weights.

    Raises FileNotFoundError for a missing path and CheckpointError (one line naming the file) for
    anything unreadable, unsafe, malformed or holding NaN/inf.
    """
    path = Path(path).expanduser()
    if path.is_dir() and (path / EXPORT_MARK).is_file():
        return []
    if path.is_dir():
        config_file, weights = path / "adapter_config.json", path / "adapter_model.safetensors"
        if not config_file.is_file():
            raise FileNotFoundError(f"{path}: no adapter_config.json (not a PEFT adapter folder)")
        config = read_json_object(config_file)
        if weights.is_file():
            tensors = read_safetensors(weights)
        else:
            weights = path / "adapter_model.bin"
            tensors = check_tensors(load_checkpoint(weights), str(weights))
        adapter = Adapter(config, tensors, str(path))
        adapter.lora_config()  # a config PEFT cannot build fails here, naming the folder
        return [adapter]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint or adapter folder")
    checkpoint = read_m2se_checkpoint(path)
    saved = checkpoint["m2se"]
    live = {_lightning_to_peft_key(k): v for k, v in checkpoint["state_dict"].items()}
    live.pop(None, None)
    where = str(path)
    return [Adapter(a["config"], a["tensors"], where) for a in saved["merged"]] + [
        Adapter(saved["lora_config"], live, where)
    ]


def check_stackable(loras: list[LoraConfig]) -> None:
    """Raise ValueError unless LoRAs with these configs can be summed into one (``stack``)."""
    if len(loras) > 1 and any(c.use_dora or c.use_rslora or c.rank_pattern or c.alpha_pattern for c in loras):
        raise ValueError("only plain LoRA adapters (no DoRA, rsLoRA or per-module ranks) can be stacked")


def stack(adapters: list[Adapter]) -> Adapter:
    """One LoRA equal to the sum of ``adapters`` (later modules_to_save win).

    Stages may adapt different modules (stage two on q/v only after an all-Linear stage one): a module
    a stage did not adapt gets zero rows and columns for that stage's rank, and the stacked config
    targets exactly the union of adapted modules.
    """
    if len(adapters) == 1:
        return adapters[0]
    configs = [a.lora_config() for a in adapters]
    check_stackable(configs)
    modules = sorted({k.rsplit(".lora_", 1)[0] for a in adapters for k in a.tensors if ".lora_A." in k})
    tensors: dict[str, torch.Tensor] = {}
    for adapter in adapters:  # modules_to_save: the latest full copy wins
        tensors.update({k: v for k, v in adapter.tensors.items() if ".lora_" not in k})
    for module in modules:
        a_key, b_key = f"{module}.lora_A.weight", f"{module}.lora_B.weight"
        shape_a = next(a.tensors[a_key].shape for a in adapters if a_key in a.tensors)
        shape_b = next(a.tensors[b_key].shape for a in adapters if b_key in a.tensors)
        blocks_a, blocks_b = [], []
        for adapter, config in zip(adapters, configs, strict=True):
            scale = config.lora_alpha / config.r
            zero_a, zero_b = torch.zeros(config.r, shape_a[1]), torch.zeros(shape_b[0], config.r)
            blocks_a.append(_wide(adapter.tensors.get(a_key, zero_a)))
            blocks_b.append(_wide(adapter.tensors.get(b_key, zero_b)) * scale)
        tensors[a_key], tensors[b_key] = torch.cat(blocks_a), torch.cat(blocks_b, dim=1)
    rank = sum(c.r for c in configs)
    targets = {dumps(c.target_modules, default=sorted, sort_keys=True) for c in configs}
    target_modules = configs[-1].target_modules
    if len(targets) > 1 or not isinstance(target_modules, str):
        # PEFT full-matches a string against each module's name: exactly the adapted modules.
        names = [m.removeprefix("base_model.model.") for m in modules]
        target_modules = "(?:" + "|".join(re.escape(n) for n in names) + ")"
    saved = sorted({m for c in configs for m in (c.modules_to_save or ())}) or None
    # Scale 1: each B already carries its own alpha / r.
    config = dict(
        adapters[-1].config,
        r=rank,
        lora_alpha=rank,
        lora_dropout=0.0,
        modules_to_save=saved,
        target_modules=target_modules,
        exclude_modules=None,
        layers_to_transform=None,
        layers_pattern=None,
    )
    return Adapter(config, tensors)


def _wide(tensor: torch.Tensor) -> torch.Tensor:
    # bf16/fp16 adapters are stacked in float32; float32 and float64 ones keep their precision.
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


FAMILY_FILE = "m2se_backbone.json"  # beside PEFT's files: the family and picture size trained on


def write_adapter(
    adapters: list[Adapter], folder: str | Path, base_model: str, backbone: dict | None = None
) -> None:
    """Write the stacked adapters into an existing ``folder`` (``adapter_config.json`` + safetensors),
    and ``backbone`` (``{"backbone": model.backbone._target_, "tile_size": px}``) into
    ``m2se_backbone.json`` when given."""
    folder = Path(folder)
    if backbone is not None:
        (folder / FAMILY_FILE).write_text(dumps(backbone) + "\n", encoding="utf-8")
    adapter = stack(adapters)
    config = adapter.lora_config()
    config.base_model_name_or_path = base_model
    config.save_pretrained(folder)
    save_file(
        {k: v.contiguous() for k, v in adapter.tensors.items()},
        folder / "adapter_model.safetensors",
        metadata={"format": "pt"},
    )


def save_adapter(adapters: list[Adapter], out_dir: str | Path, base_model: str) -> Path:
    """Write the stacked adapters as a PEFT folder for ``PeftModel.from_pretrained(base, out_dir)``,
    staged beside ``out_dir`` and renamed into place as a whole."""
    with staged_dir(out_dir) as staged:
        write_adapter(adapters, staged, base_model)
    return Path(out_dir)


def recorded(ckpt: Path) -> dict:
    """What training recorded of the model behind ``ckpt``: the adapter folder's ``m2se_backbone.json``
    or the checkpoint's ``m2se`` entry (``backbone``, ``tile_size``); empty when nothing was."""
    if ckpt.is_dir():
        file = ckpt / FAMILY_FILE
        return read_json_object(file) if file.is_file() else {}
    # A look at the plain data only: the tensors stay on disk (the full read and checks come later).
    saved = load_checkpoint(ckpt, mmap=True).get("m2se")
    return saved if isinstance(saved, dict) else {}


def backbone_of(ckpt: Path) -> str:
    """The family ``ckpt`` was trained on as training recorded it (``recorded``); InternVL for ones that
    record none, written before a second family existed (``DEFAULT_BACKBONE``)."""
    family = recorded(ckpt).get("backbone")
    return family if isinstance(family, str) and family else DEFAULT_BACKBONE


def check_family(ckpt: str | Path | None, family: str | None) -> None:
    """ValueError when ``ckpt`` (an adapter folder, checkpoint or export) records another family than
    ``family`` (a ``model.backbone._target_``): its weights would not fit, or fit the wrong network."""
    path = Path(ckpt).expanduser() if ckpt else None
    if path is None or not path.exists():
        return
    export = read_export(path)
    trained_on = export.backbone if export is not None else backbone_of(path)
    if trained_on != family:
        raise ValueError(
            f"{ckpt}: trained on the {trained_on} family, but model.backbone is {family}; "
            "give the model config it was trained with (model=...)"
        )


def warn_other_size(ckpt: str | Path | None, tile_size: int) -> None:
    """A warning when ``ckpt`` was trained on pictures of another side than ``tile_size`` px (a Qwen-VL
    ``model.processor.frame_size`` changed since): allowed, but the numbers are not the trained setting's."""
    path = Path(ckpt).expanduser() if ckpt else None
    if path is None or not path.exists() or read_export(path) is not None:
        return
    trained = recorded(path).get("tile_size")
    if isinstance(trained, int) and trained != tile_size:
        warnings.warn(
            f"{ckpt} was trained on {trained}-px pictures; these are {tile_size} px (model.processor)",
            stacklevel=2,
        )

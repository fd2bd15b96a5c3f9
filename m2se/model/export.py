"""Merge every LoRA a checkpoint holds into its base and write one standalone model folder.

``python -m m2se.export`` (``m2se/export.py``) is the command. The folder holds the weights (safetensors,
sharded above ``max_shard_size``), config, generation config, the tokenizer whose chat template writes
the trained system prompt when a conversation has none, ``m2se_export.json`` (the prompt and media
settings training used; ``m2se.model.exported``), the audio parts when the checkpoint has them, and a
``README.md`` model card. ``format=native``: the family's transformers model
(``InternVLForConditionalGeneration``, ``Qwen2_5_VLForConditionalGeneration``, ...); ``format=original``
(InternVL only): InternVL2's ``InternVLChatModel`` layout (``m2se.model.export_original``).
"""

from __future__ import annotations

import importlib
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer
from transformers.utils.hub import convert_file_size_to_int

from m2se.files import dumps, first_line, staged_dir
from m2se.model.adapters import Adapter, merge, read_adapters
from m2se.model.audio import CONFIG as AUDIO_CONFIG
from m2se.model.audio import WEIGHTS as AUDIO_WEIGHTS
from m2se.model.audio import read_saved
from m2se.model.backbone import LoadSettings
from m2se.model.checkpoints import CheckpointError, read_json_object, read_m2se_checkpoint
from m2se.model.export_original import write_original
from m2se.model.exported import DEFAULT_BACKBONE, ExportRecord, read_export

# The base's image and video processor settings, copied as they are into a native export.
PROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
FORMATS = ("native", "original")


@dataclass(frozen=True)
class Exported:
    path: Path
    record: ExportRecord
    adapters: list[Adapter]
    bytes: int  # every file in the folder


def base_of(ckpt: Path) -> str:
    """The base model ``ckpt`` was trained on, as training named it (the adapter config's
    ``base_model_name_or_path``, the checkpoint's ``m2se.base``). ValueError when it names none."""
    if ckpt.is_dir():
        base = read_json_object(ckpt / "adapter_config.json").get("base_model_name_or_path")
    else:
        base = read_m2se_checkpoint(ckpt)["m2se"].get("base")
    if not isinstance(base, str) or not base:
        raise ValueError(f"{ckpt}: names no base model; give it with model=PATH")
    return base


def with_default_system(template: str, system: str | None) -> str:
    """``template`` (a Jinja chat template) writing ``system`` as the system message of a conversation
    that has none; unchanged when ``system`` is empty."""
    if not system:
        return template
    message = "{'role': 'system', 'content': " + dumps(system, ensure_ascii=False) + "}"
    return (
        "{%- if not messages or messages[0]['role'] != 'system' -%}"
        "{%- set messages = [" + message + "] + messages -%}{%- endif -%}" + template
    )


def check_out(out: Path, overwrite: bool, keep: dict[str, Path] | None = None) -> None:
    """Refuse (FileExistsError) an ``out`` that is a file, a folder with files unless ``overwrite``, or,
    whatever ``overwrite`` says, one that is, holds or lies inside a path of ``keep`` (what → path: the
    checkpoint read, the base model): replacing ``out`` would delete it."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"out {out}: is a file")
    target = out.resolve()
    for what, path in (keep or {}).items():
        path = path.resolve()
        if target == path or target in path.parents or path in target.parents:
            raise FileExistsError(
                f"out {out}: holds, is or lies inside the {what} {path}; choose another folder"
            )
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"out {out}: exists and is not empty (overwrite=true replaces it)")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def export_model(
    ckpt: str | Path,
    out: str | Path,
    processor: dict,
    settings_from: str,
    card: Callable[[ExportRecord, Path, list[Adapter]], str],
    base: str | None = None,
    dtype: str = "bf16",
    format: str = "native",
    overwrite: bool = False,
    max_shard_size: str = "4GB",
    cache_dir: str | Path = "~/.cache/m2se/converted",
    say: Callable[[str], None] = print,
    backbone: str = DEFAULT_BACKBONE,
    model_processor: dict | None = None,
) -> Exported:
    """Merge ``ckpt``'s adapters (a PEFT adapter folder or an ``M2SEModule`` checkpoint) into ``base``
    (default: the one ``ckpt`` names; a hub id, native or original folder as ``model.path`` takes) in
    float32, cast to ``dtype`` (bf16, fp16, fp32) and write the ``format`` folder at ``out``: staged
    beside it and renamed into place whole. ``processor``: the ``m2se.model.exported.CONFIG_KEYS``
    settings training used (``settings_from`` says where they came from); ``card`` writes README.md.
    ``backbone``: the family's ``model.backbone._target_`` training used (it finds and loads the base);
    ``model_processor``: the family processor's own options training used (``model.processor`` but
    ``_target_`` and ``path``), recorded so that the folder evaluates as it trained.

    Raises ValueError for an unknown dtype or format, a ckpt that is already an export or whose LoRA
    does not fit the base (CheckpointError), or a model the original layout cannot hold;
    FileNotFoundError for a missing ckpt or base; FileExistsError for an ``out`` with files in it.
    """
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r} (expected one of {', '.join(FORMATS)})")
    ckpt, out = Path(ckpt).expanduser(), Path(out).expanduser()
    if not ckpt.exists():
        raise FileNotFoundError(f"ckpt {ckpt}: no such adapter folder or checkpoint")
    if read_export(ckpt) is not None:
        raise ValueError(
            f"ckpt {ckpt}: is an export already (give the adapter folder or checkpoint it came from)"
        )
    check_out(out, overwrite, {"checkpoint": ckpt})
    max_shard_bytes = _shard_bytes(max_shard_size)
    adapters, audio = read_adapters(ckpt), read_saved(ckpt)
    named = base or base_of(ckpt)
    try:
        family = backbone_class(backbone)(path=named, cache_dir=str(cache_dir)).resolved()
        base_dir = Path(family.path)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"base model of {ckpt}: {first_line(err)}; give its current place with model=PATH"
        ) from None
    check_out(out, overwrite, {"checkpoint": ckpt, "base model": base_dir})
    say(f"merging {len(adapters)} LoRA adapter(s) of {ckpt} into {base_dir} (float32)")
    model = family.load(LoadSettings(dtype="float32"))
    try:
        with warnings.catch_warnings():  # model= on purpose: PEFT's "base_model_name_or_path was renamed"
            warnings.filterwarnings("ignore", message="The PEFT config's `base_model_name_or_path`")
            model = merge(model, adapters).to(DTYPES[dtype])
    except CheckpointError as err:
        raise CheckpointError(f"{err}; base {base_dir} (model=PATH gives another)") from None
    for sub in (model.config.text_config, model.config.vision_config):
        sub.dtype = None  # loading stamped float32 on them; config.dtype alone says what was saved
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    system = processor.get("system_prompt")
    settings = {**processor, **tile_settings(model.config)}
    record = ExportRecord(
        format,
        str(model.dtype).removeprefix("torch."),
        named,
        str(ckpt),
        settings,
        settings_from,
        audio is not None,
        backbone,
        dict(model_processor or {}),
    )
    with staged_dir(out) as staged:
        if format == "native":
            model.save_pretrained(staged, max_shard_size=max_shard_bytes)
            tokenizer.chat_template = with_default_system(tokenizer.chat_template, system)
            tokenizer.save_pretrained(staged)
            for name in PROCESSOR_FILES:  # AutoProcessor (and vLLM) read them beside the model
                if (base_dir / name).is_file():
                    shutil.copy2(base_dir / name, staged / name)
        else:
            write_original(model, tokenizer, staged, system, processor, base_dir, max_shard_bytes)
        if audio is not None:
            save_file(
                {k: v.contiguous() for k, v in audio[1].items()},
                staged / AUDIO_WEIGHTS,
                metadata={"format": "pt"},
            )
            (staged / AUDIO_CONFIG).write_text(dumps(audio[0], indent=2) + "\n", encoding="utf-8")
        record.write(staged)
        (staged / "README.md").write_text(card(record, staged, adapters), encoding="utf-8")
    return Exported(out, record, adapters, folder_bytes(out))


def backbone_class(target: str) -> type:
    """The class a ``model.backbone._target_`` names. ValueError naming it when it cannot be imported."""
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"model.backbone._target_ {target!r}: no such class") from None


def tile_settings(config) -> dict:
    """``tile_size`` (px) and ``tokens_per_tile`` where the model's config fixes them (InternVL's does;
    a family whose processor sets its frame size records that in the export's ``model_processor``)."""
    size, tokens = (
        getattr(config.vision_config, "image_size", None),
        getattr(config, "image_seq_length", None),
    )
    if size is None or tokens is None:
        return {}
    return {"tile_size": size[0] if isinstance(size, list | tuple) else size, "tokens_per_tile": tokens}


def _shard_bytes(size: str | int) -> int:
    try:
        value = convert_file_size_to_int(size if isinstance(size, int) else str(size).replace(" ", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"max_shard_size {size!r}: expected a size such as 4GB, 500MB or 2GiB")
    return value

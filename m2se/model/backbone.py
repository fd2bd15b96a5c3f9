"""The seam between the project and a vision-language family: find it, load it frozen, name its parts.

A family is one model module (``m2se.model.internvl.InternVL``, ``m2se.model.qwen_vl.QwenVL``) and one
processor module (``m2se.data.internvl``, ``m2se.data.qwen_vl``; their ``Vision`` is the data half of
the seam, ``m2se.data.vision``), named by a model config with ``_target_`` (``model.backbone``,
``model.processor``). ``M2SEModule`` loads the network through ``Backbone.load`` and places LoRA by
``Backbone.parts``; nothing else in the project knows which family it trains.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import torch
from peft import prepare_model_for_kbit_training
from torch import nn
from transformers import BitsAndBytesConfig

from m2se.files import first_line


class Backbone(Protocol):
    """A vision-language family's model, as ``model.backbone`` instantiates it."""

    path: str  # a hub id or folder as configured; after ``resolved()``, a local native directory
    # LoRA part names (vision_tower, projector, language_model) → module prefixes in the loaded model
    parts: Mapping[str, str]

    def resolved(self) -> Backbone:
        """The same backbone at a local directory ``load`` and the processor read (converting or
        downloading once if the family needs it). FileNotFoundError saying what to do otherwise."""

    def load(self, settings: LoadSettings) -> nn.Module:
        """The frozen base model; ``model(input_ids, attention_mask, pixel_values, labels)`` gives a loss
        and ``model.generate`` answers. ValueError naming the path when it is not this family's."""


DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
LOAD_CHOICES = {
    "dtype": ("auto", "float32", "bfloat16", "float16"),
    "attn_implementation": ("auto", "sdpa", "eager", "flash_attention_2"),
    "quantization": ("none", "4bit"),
}


@dataclass(frozen=True)
class LoadSettings:
    """How the base model is loaded. ``dtype`` auto: bf16 on CUDA, fp32 otherwise."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    quantization: Literal["none", "4bit"] = "none"
    gradient_checkpointing: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Export's spellings (bf16, fp16, fp32) are taken too.
        object.__setattr__(self, "dtype", DTYPE_ALIASES.get(self.dtype, self.dtype))
        for key, choices in LOAD_CHOICES.items():
            if getattr(self, key) not in choices:
                raise ValueError(
                    f"module.load.{key} must be one of {', '.join(choices)}; got {getattr(self, key)!r}"
                )

    def torch_dtype(self) -> torch.dtype:
        if self.dtype == "auto":
            return torch.bfloat16 if torch.cuda.is_available() else torch.float32
        return getattr(torch, self.dtype)

    def attention(self) -> str:
        if self.attn_implementation != "auto":
            return self.attn_implementation
        flash = importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()
        return "flash_attention_2" if flash else "sdpa"


def load_frozen(
    model_class, path: str | Path, settings: LoadSettings, full_precision: Sequence[str] = ()
) -> nn.Module:
    """``model_class.from_pretrained(path)`` as ``settings`` say, every weight frozen. 4-bit quantizes
    all but the modules named in ``full_precision`` (full names, e.g. the vision tower and projector:
    QLoRA). ValueError naming ``path`` when transformers cannot read it."""
    kwargs = dict(dtype=settings.torch_dtype(), attn_implementation=settings.attention(), **settings.extra)
    if settings.quantization == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=settings.torch_dtype(),
            llm_int8_skip_modules=list(full_precision),
        )
    try:
        model = model_class.from_pretrained(str(path), **kwargs)
    except (OSError, MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as err:  # transformers and huggingface_hub raise many types on a bad config.json
        raise ValueError(f"{path}: not a readable model directory ({first_line(err)})") from None
    model.requires_grad_(False)
    if settings.quantization == "4bit":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=settings.gradient_checkpointing
        )
        model.requires_grad_(False)  # prepare_model_for_kbit_training unfreezes non-quantized params
    elif settings.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # the name since transformers 5.x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def family_of(backbone: Backbone) -> str:
    """The ``model.backbone._target_`` that builds ``backbone`` (its class's dotted name)."""
    return f"{type(backbone).__module__}.{type(backbone).__qualname__}"


def local_model_dir(path: str | Path, hint: str = "") -> Path:
    """The local directory ``path`` names: itself, or a hub id's snapshot in the Hugging Face cache
    (downloaded when the hub is reachable). FileNotFoundError saying what to do otherwise (``hint``: the
    family's own advice, appended)."""
    local = Path(path).expanduser()
    if local.exists() and not local.is_dir():
        raise FileNotFoundError(f"model.path {path}: is a file, not a model directory")
    if local.is_dir():
        return local
    if local.is_absolute() or str(path).startswith((".", "~")):
        raise FileNotFoundError(f"model.path {path}: no such directory")  # a path, not a hub id
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        return Path(snapshot_download(str(path)))
    except (OSError, HFValidationError, ValueError) as err:
        reason = first_line(err) if str(err).strip() else type(err).__name__
        if "HF_HUB_OFFLINE" in reason or "offline" in reason.lower():
            reason = "the hub is not reachable from here"  # not Hugging Face's advice to go online
        raise FileNotFoundError(
            f"model {path!r} is neither a local directory nor in the Hugging Face cache ({reason}). "
            f"Download it where the hub is reachable: `hf download {path} --local-dir DIR`, "
            f"then pass model.path=DIR{hint}"
        ) from None

"""Load a native InternVL (local, cached hub id, or an original checkpoint converted once) and add LoRA.

EmoVerse's recipe is the default (PROTOCOL.md §3): LoRA r=8, alpha=32, dropout 0.05 on every Linear
of the language model and the projector; vision tower frozen; embeddings and lm_head untouched.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from torch import nn
from transformers import BitsAndBytesConfig, InternVLForConditionalGeneration

from m2se.files import first_line, read_json_object

# Where each part lives in the native model (PROTOCOL.md §6).
PARTS = {
    "vision_tower": "model.vision_tower",
    "projector": "model.multi_modal_projector",
    "language_model": "model.language_model",
}


# Named groups of LoRA targets that hold whatever layout the backbone has: Qwen2/InternLM2 project
# q, k and v apart, Phi-3 (InternVL2-4B) in one fused qkv_proj.
TARGET_GROUPS = {"attention_qkv": ("q_proj", "k_proj", "v_proj", "qkv_proj")}


def _expand_groups(targets: Sequence[str], leaves: Sequence[str]) -> list[str]:
    out = []
    for target in targets:
        if target in TARGET_GROUPS:
            present = [leaf for leaf in TARGET_GROUPS[target] if leaf in leaves]
            out += present or [target]  # none present: reported as unknown below
        else:
            out.append(target)
    return out


@dataclass(frozen=True)
class LoraSettings:
    """LoRA on every Linear under ``parts`` whose leaf name is in ``target_modules`` (None: all of them;
    a name of ``TARGET_GROUPS``, e.g. ``attention_qkv``, stands for those of its leaves the model has).

    ``trainable_parts`` are trained in full beside the adapters (PEFT ``modules_to_save``).
    """

    r: int = 8
    alpha: int = 32
    dropout: float = 0.05
    parts: Sequence[str] = ("language_model", "projector")
    target_modules: Sequence[str] | None = None
    trainable_parts: Sequence[str] = ()

    def config(self, model: nn.Module) -> LoraConfig:
        for part in (*self.parts, *self.trainable_parts):
            if part not in PARTS:
                raise ValueError(f"unknown model part {part!r} (known: {', '.join(PARTS)})")
        if set(self.parts) & set(self.trainable_parts):
            both = sorted(set(self.parts) & set(self.trainable_parts))
            raise ValueError(f"{both} cannot take LoRA and train in full at once (parts vs trainable_parts)")
        prefixes = tuple(PARTS[p] + "." for p in self.parts)
        leaves = sorted(
            {
                name.rsplit(".", 1)[-1]
                for name, module in model.named_modules()
                if _is_linear(module) and name.startswith(prefixes)
            }
        )
        if self.target_modules is not None:
            targets = _expand_groups(self.target_modules, leaves)
            unknown = set(targets) - set(leaves)
            if unknown:
                raise ValueError(
                    f"LoRA targets {sorted(unknown)} are not Linear layers in {list(self.parts)}"
                )
            leaves = sorted(targets)
        if not leaves:
            raise ValueError(f"no Linear layer to adapt in {list(self.parts)}")
        # A regex, not a list of leaf names: plain names would also hit the vision tower (PROTOCOL §6).
        parts = "|".join(re.escape(PARTS[p]) for p in self.parts)
        pattern = rf"(?:{parts})\.(?:.*\.)?(?:{'|'.join(map(re.escape, leaves))})"
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=pattern,
            modules_to_save=[PARTS[p].rsplit(".", 1)[-1] for p in self.trainable_parts] or None,
            bias="none",
        )


def _is_linear(module: nn.Module) -> bool:
    # bitsandbytes' Linear4bit subclasses nn.Linear too.
    return isinstance(module, nn.Linear)


@dataclass(frozen=True)
class LoadSettings:
    """How the base model is loaded. ``dtype`` auto: bf16 on CUDA, fp32 otherwise."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    quantization: Literal["none", "4bit"] = "none"
    gradient_checkpointing: bool = False
    extra: dict = field(default_factory=dict)

    def torch_dtype(self) -> torch.dtype:
        if self.dtype == "auto":
            return torch.bfloat16 if torch.cuda.is_available() else torch.float32
        return getattr(torch, self.dtype)

    def attention(self) -> str:
        if self.attn_implementation != "auto":
            return self.attn_implementation
        flash = importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()
        return "flash_attention_2" if flash else "sdpa"


def load_base(path: str | Path, settings: LoadSettings | None = None) -> InternVLForConditionalGeneration:
    """The frozen base model. 4-bit quantizes the language model only (QLoRA); vision and projector stay full."""
    settings = settings or LoadSettings()
    kwargs = dict(dtype=settings.torch_dtype(), attn_implementation=settings.attention(), **settings.extra)
    if settings.quantization == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=settings.torch_dtype(),
            # Full names: a bare "vision_tower" does not match (PROTOCOL §6).
            llm_int8_skip_modules=[PARTS["vision_tower"], PARTS["projector"], "lm_head"],
        )
    try:
        model = InternVLForConditionalGeneration.from_pretrained(str(path), **kwargs)
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


def add_lora(model: nn.Module, lora: LoraSettings) -> PeftModel:
    """Wrap ``model`` with a fresh, trainable LoRA; everything else stays frozen."""
    return get_peft_model(model, lora.config(model))


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# -- finding the model --------------------------------------------------------------------------


def resolve_model_path(path: str | Path, cache_dir: str | Path) -> Path:
    """A native model directory for ``path``: itself, or an original InternVL2 converted once into the cache.

    ``path`` is a local directory (native or original) or a hub id found in the local Hugging Face
    cache (downloaded when the hub is reachable). Raises FileNotFoundError saying what to do.
    """
    local = Path(path).expanduser()
    if not local.is_dir():
        local = _from_hub(str(path))
    config = read_json_object(local / "config.json") if (local / "config.json").is_file() else {}
    if config.get("model_type") == "internvl":
        return local
    architectures = config.get("architectures")
    if isinstance(architectures, list) and "InternVLChatModel" in architectures:
        digest = hashlib.sha1(str(local.resolve()).encode()).hexdigest()[:10]
        target = Path(cache_dir).expanduser() / f"{local.name}-{digest}"
        if not (target / "config.json").is_file():
            from m2se.model.convert import convert_checkpoint

            print(f"converting {local} to the native InternVL format in {target} (once)")
            convert_checkpoint(local, target)
        return target
    raise FileNotFoundError(
        f"{local}: not an InternVL model directory (config.json has no InternVL model_type)"
    )


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        return Path(snapshot_download(repo_id))
    except (OSError, HFValidationError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FileNotFoundError(
            f"model {repo_id!r} is neither a local directory nor in the Hugging Face cache ({reason}). "
            f"Download it where the hub is reachable: `huggingface-cli download {repo_id} --local-dir DIR`, "
            f"then pass model.path=DIR (an original InternVL2 checkpoint is converted on first use, "
            f"or convert it yourself: `python -m m2se.model.convert DIR NATIVE_DIR`)"
        ) from None

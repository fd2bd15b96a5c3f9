"""LoRA on named parts of a backbone, whatever its family: the family says where each part lives.

EmoVerse's recipe is the default (docs/PROTOCOL.md §5): LoRA r=8, alpha=32, dropout 0.05 on every Linear
of the language model and the projector; vision tower frozen; embeddings and lm_head untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

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

    def config(self, model: nn.Module, parts: Mapping[str, str]) -> LoraConfig:
        """PEFT's config for ``model``, whose part names map to module prefixes as ``parts`` says
        (``Backbone.parts``). ValueError naming an unknown part or target, or a part both adapted and
        trained in full."""
        for part in (*self.parts, *self.trainable_parts):
            if part not in parts:
                raise ValueError(f"unknown model part {part!r} (known: {', '.join(parts)})")
        if set(self.parts) & set(self.trainable_parts):
            both = sorted(set(self.parts) & set(self.trainable_parts))
            raise ValueError(f"{both} cannot take LoRA and train in full at once (parts vs trainable_parts)")
        prefixes = tuple(parts[p] + "." for p in self.parts)
        leaves = sorted(
            {
                _leaf(name)
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
        # A regex, not a list of leaf names: plain names would also hit the vision tower
        # (docs/PROTOCOL.md §10).
        names = "|".join(re.escape(parts[p]) for p in self.parts)
        pattern = rf"(?:{names})\.(?:.*\.)?(?:{'|'.join(map(re.escape, leaves))})"
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=pattern,
            modules_to_save=[parts[p].rsplit(".", 1)[-1] for p in self.trainable_parts] or None,
            bias="none",
        )


def _leaf(name: str) -> str:
    """A Linear's name as a LoRA target: its last component, with its parent's where that is an index
    (Qwen-VL's merger is ``mlp.0``/``mlp.2``; a bare ``0`` would also name every first decoder layer)."""
    parts = name.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def _is_linear(module: nn.Module) -> bool:
    # bitsandbytes' Linear4bit subclasses nn.Linear too.
    return isinstance(module, nn.Linear)


def add_lora(model: nn.Module, lora: LoraSettings, parts: Mapping[str, str]) -> PeftModel:
    """Wrap ``model`` with a fresh, trainable LoRA; everything else stays frozen. ``parts``: part name →
    module prefix (``Backbone.parts``)."""
    return get_peft_model(model, lora.config(model, parts))


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

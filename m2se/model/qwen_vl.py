"""Qwen2-VL's and Qwen2.5-VL's half of the backbone seam: find one (local or a cached hub id), load it,
and say where its parts are.

The processor half is ``m2se.data.qwen_vl``; ``conf/model/qwen*.yaml`` and ``tiny_qwen.yaml`` name both.
transformers' ``Qwen2VLForConditionalGeneration`` / ``Qwen2_5_VLForConditionalGeneration`` are loaded
as published (their ``model_type`` picks the class); there is nothing to convert.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from torch import nn
from transformers import AutoModelForImageTextToText

from m2se.files import read_json_object
from m2se.model.backbone import LoadSettings, load_frozen, local_model_dir

MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")

# Where each part lives: the vision transformer's blocks, the patch merger that projects into the
# language model (LoRA there when lora.parts has projector), the language model.
PARTS = {
    "vision_tower": "model.visual.blocks",
    "projector": "model.visual.merger",
    "language_model": "model.language_model",
}


@dataclass(frozen=True)
class QwenVL:
    """``model.backbone`` for Qwen2-VL and Qwen2.5-VL: ``path`` a hub id or a local folder in
    transformers' format (the published one). ``cache_dir`` is unused (kept so model configs share keys)."""

    path: str
    cache_dir: str = "~/.cache/m2se/converted"
    parts: ClassVar[dict[str, str]] = PARTS

    def resolved(self) -> QwenVL:
        """This backbone at its local directory. FileNotFoundError saying what to do when there is none
        or it is not a Qwen-VL model."""
        local = local_model_dir(self.path)
        config = read_json_object(local / "config.json") if (local / "config.json").is_file() else {}
        if config.get("model_type") not in MODEL_TYPES:
            raise FileNotFoundError(
                f"{local}: not a Qwen2-VL or Qwen2.5-VL model directory "
                f"(config.json model_type {config.get('model_type')!r}, expected one of {', '.join(MODEL_TYPES)})"
            )
        return replace(self, path=str(local))

    def load(self, settings: LoadSettings | None = None) -> nn.Module:
        """The frozen base model. 4-bit quantizes the language model only (QLoRA): the whole vision
        side (tower and merger) and lm_head stay full."""
        full = ["model.visual", "lm_head"]
        return load_frozen(AutoModelForImageTextToText, Path(self.path), settings or LoadSettings(), full)

"""InternVL's half of the backbone seam: find a native InternVL (local, cached hub id, or an original
checkpoint converted once), load it, and say where its parts are.

The processor half is ``m2se.data.internvl``; ``conf/model/internvl*.yaml`` and ``tiny.yaml`` name both.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from transformers import InternVLForConditionalGeneration

from m2se.files import read_json_object
from m2se.model.backbone import LoadSettings, load_frozen, local_model_dir

log = logging.getLogger(__name__)

# Where each part lives in the native model (docs/PROTOCOL.md §10).
PARTS = {
    "vision_tower": "model.vision_tower",
    "projector": "model.multi_modal_projector",
    "language_model": "model.language_model",
}


CONVERT_HINT = (
    " (an original InternVL2/2.5/3 checkpoint is converted on first use; "
    "`python -m m2se.model.convert DIR NATIVE_DIR` converts it by hand)"
)


@dataclass(frozen=True)
class InternVL:
    """``model.backbone`` for InternVL2, 2.5 and 3 (and any native ``InternVLForConditionalGeneration``):
    ``path`` a hub id or folder, native or original; an original one is converted once into ``cache_dir``."""

    path: str
    cache_dir: str = "~/.cache/m2se/converted"
    parts: ClassVar[dict[str, str]] = PARTS

    def resolved(self) -> InternVL:
        """This backbone at its native directory (see ``resolve_model_path``)."""
        return replace(self, path=str(resolve_model_path(self.path, self.cache_dir)))

    def load(self, settings: LoadSettings | None = None) -> InternVLForConditionalGeneration:
        return load_base(self.path, settings)


def load_base(path: str | Path, settings: LoadSettings | None = None) -> InternVLForConditionalGeneration:
    """The frozen base model. 4-bit quantizes the language model only (QLoRA); vision and projector stay full."""
    # Full names: a bare "vision_tower" does not match (docs/PROTOCOL.md §10).
    full = [PARTS["vision_tower"], PARTS["projector"], "lm_head"]
    return load_frozen(InternVLForConditionalGeneration, path, settings or LoadSettings(), full)


def resolve_model_path(path: str | Path, cache_dir: str | Path) -> Path:
    """A native model directory for ``path``: itself, or an original InternVL2, 2.5 or 3 checkpoint
    converted once into the cache.

    ``path`` is a local directory (native or original) or a hub id found in the local Hugging Face
    cache (downloaded when the hub is reachable). Raises FileNotFoundError saying what to do.
    """
    local = local_model_dir(path, CONVERT_HINT)
    config = read_json_object(local / "config.json") if (local / "config.json").is_file() else {}
    if config.get("model_type") == "internvl":
        return local
    architectures = config.get("architectures")
    if isinstance(architectures, list) and "InternVLChatModel" in architectures:
        digest = hashlib.sha1(str(local.resolve()).encode()).hexdigest()[:10]
        target = Path(cache_dir).expanduser() / f"{local.name}-{digest}"
        if not (target / "config.json").is_file():
            from m2se.model.convert import convert_checkpoint

            log.info(f"converting {local} to the native InternVL format in {target} (once)")
            convert_checkpoint(local, target)
        return target
    raise FileNotFoundError(
        f"{local}: not an InternVL model directory (config.json has no InternVL model_type)"
    )

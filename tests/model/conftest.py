"""Tiny original-layout checkpoints converted once per session (tests/model/original_layout.py)."""

from dataclasses import dataclass
from pathlib import Path

import pytest
from transformers import AutoTokenizer, InternVLForConditionalGeneration

from m2se.model.convert import ConversionReport, convert_checkpoint
from tests.model.original_layout import write_original_checkpoint


@dataclass
class Converted:
    src: Path
    dst: Path
    native: InternVLForConditionalGeneration  # the model the original checkpoint was written from
    report: ConversionReport
    model: InternVLForConditionalGeneration  # loaded back from dst
    tokenizer: object


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """name of original_layout.CHECKPOINTS → Converted; each written and converted on first use."""
    cache: dict[str, Converted] = {}

    def get(name: str) -> Converted:
        if name not in cache:
            root = tmp_path_factory.mktemp(name)
            src, native = write_original_checkpoint(root / "original", name)
            report = convert_checkpoint(src, root / "native")
            model = InternVLForConditionalGeneration.from_pretrained(root / "native").eval()
            tokenizer = AutoTokenizer.from_pretrained(root / "native")
            cache[name] = Converted(src, root / "native", native, report, model, tokenizer)
        return cache[name]

    return get

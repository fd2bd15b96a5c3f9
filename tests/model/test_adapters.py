import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import InternVLForConditionalGeneration

from m2se.data import internvl
from m2se.model.adapters import Adapter, merge, read_adapters, save_adapter, stack
from m2se.model.internvl import PARTS, load_base
from m2se.model.lora import LoraSettings, add_lora


@pytest.fixture(scope="module")
def batch(tiny_model_dir):
    processor = internvl.from_pretrained(tiny_model_dir)
    frames = np.random.default_rng(0).integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)
    return processor.collate([processor("The person says: 'hi'", "Positive.", videos=[frames])])


def trained_adapter(base, seed: int, settings: LoraSettings | None = None):
    model = add_lora(base, settings or LoraSettings(), PARTS)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # as if trained: B is no longer zero
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    return model


# Compared in float64: stacking and merging change only the order of additions, so float64's rounding
# (~1e-16 relative, logits of order 10 after a few layers) bounds the difference far below 1e-9, while
# a lost or mis-scaled stage moves logits by more than 1e-3 (checked below). In float32 the same
# reordering moves one logit in 39k by ~1e-4, which an atol of 1e-4 passed or failed by luck.
ATOL = 1e-9


def base64(tiny_model_dir):
    return load_base(tiny_model_dir).double()


def plain_base64(tiny_model_dir):
    return InternVLForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float64)


def logits(model, batch):
    model.eval()
    batch = {k: v.double() if torch.is_floating_point(v) else v for k, v in batch.items()}
    with torch.no_grad():
        return model(**batch).logits


def test_two_stages_stack_into_one_folder_that_loads_on_the_original_base(tiny_model_dir, batch, tmp_path):
    first = trained_adapter(base64(tiny_model_dir), seed=1)
    stage_one = Adapter.of(first)
    second = trained_adapter(first.merge_and_unload(), seed=2)
    reference = logits(second, batch)  # base + merged stage one + live stage two
    folder = save_adapter([stage_one, Adapter.of(second)], tmp_path / "adapter", str(tiny_model_dir))
    plain = PeftModel.from_pretrained(plain_base64(tiny_model_dir), folder)
    assert plain.peft_config["default"].r == 16
    torch.testing.assert_close(logits(plain, batch), reference, atol=ATOL, rtol=0)
    # The stacked LoRA differs from either stage alone: the test would notice a lost stage.
    only_second = save_adapter([Adapter.of(second)], tmp_path / "second_only", str(tiny_model_dir))
    base = plain_base64(tiny_model_dir)
    assert not torch.allclose(
        logits(PeftModel.from_pretrained(base, only_second), batch), reference, atol=1e-3
    )


def test_merge_reproduces_the_live_adapter(tiny_model_dir, batch, tmp_path):
    live = trained_adapter(base64(tiny_model_dir), seed=3)
    reference = logits(live, batch)
    merged = merge(base64(tiny_model_dir), [Adapter.of(live)])
    torch.testing.assert_close(logits(merged, batch), reference, atol=ATOL, rtol=0)
    assert not any(p.requires_grad for p in merged.parameters())
    folder = save_adapter([Adapter.of(live)], tmp_path / "a", str(tiny_model_dir))
    (read,) = read_adapters(folder)
    assert read.config["r"] == 8 and read.tensors.keys() == Adapter.of(live).tensors.keys()


def test_full_trained_parts_survive_stacking(tiny_model_dir, batch, tmp_path):
    settings = LoraSettings(parts=["language_model"], trainable_parts=["projector"])
    first = trained_adapter(base64(tiny_model_dir), seed=4, settings=settings)
    stage_one = Adapter.of(first)
    second = trained_adapter(first.merge_and_unload(), seed=5, settings=settings)
    folder = save_adapter([stage_one, Adapter.of(second)], tmp_path / "adapter", str(tiny_model_dir))
    plain = PeftModel.from_pretrained(plain_base64(tiny_model_dir), folder)
    torch.testing.assert_close(logits(plain, batch), logits(second, batch), atol=ATOL, rtol=0)


def test_read_adapters_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint or adapter folder"):
        read_adapters(tmp_path / "absent.ckpt")
    with pytest.raises(FileNotFoundError, match="no adapter_config.json"):
        read_adapters(tmp_path)
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not an m2se checkpoint"):
        read_adapters(tmp_path / "other.ckpt")


@pytest.mark.parametrize(
    ("key", "value"),
    [("lora_alpha", float("nan")), ("lora_alpha", float("inf")), ("lora_alpha", 0), ("lora_dropout", 1.5)],
)
def test_a_lora_config_with_a_scale_that_would_poison_the_base_is_refused(key, value):
    config = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj"], key: value}
    with pytest.raises(
        ValueError, match=r"x.ckpt: invalid LoRA config \(lora_alpha"
    ):  # NaN merged into the base
        Adapter(config, {}, "x.ckpt").lora_config()


def test_stack_refuses_what_it_cannot_sum():
    dora = Adapter({"r": 8, "lora_alpha": 8, "use_dora": True, "target_modules": "x"}, {})
    with pytest.raises(ValueError, match="only plain LoRA"):
        stack([dora, dora])

import json

import pytest
import torch
from torch import nn

from m2se.data import internvl
from m2se.model.backbone import LoadSettings
from m2se.model.internvl import PARTS, InternVL, load_base, resolve_model_path
from m2se.model.lora import LoraSettings, _expand_groups, trainable_parameters
from m2se.model.lora import add_lora as add_lora_on_parts


def add_lora(model, settings):
    return add_lora_on_parts(model, settings, PARTS)


@pytest.fixture
def base(tiny_model_dir):
    return load_base(tiny_model_dir)


def linear_layers(model, prefixes):
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith(prefixes)}


def test_default_lora_trains_exactly_the_emoverse_parameters(base):
    adapted = linear_layers(base, ("model.language_model.", "model.multi_modal_projector."))
    expected = sum(8 * (m.in_features + m.out_features) for m in adapted.values())
    model = add_lora(base, LoraSettings())
    assert trainable_parameters(model) == expected == 19968
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(".lora_A." in n or ".lora_B." in n for n in trained)
    assert not any("vision_tower" in n or "embed_tokens" in n or "lm_head" in n for n in trained)
    assert len(trained) == 2 * len(adapted)


def test_lora_targets_parts_and_full_training_are_config(base):
    model = add_lora(
        base,
        LoraSettings(
            r=4, parts=["language_model"], target_modules=["q_proj", "v_proj"], trainable_parts=["projector"]
        ),
    )
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    lora = [n for n in trained if ".lora_" in n]
    assert lora and all(("q_proj" in n or "v_proj" in n) and "language_model" in n for n in lora)
    full = [n for n in trained if ".lora_" not in n]
    assert full and all("multi_modal_projector" in n and "modules_to_save" in n for n in full)


@pytest.mark.parametrize(
    "settings,message",
    [
        (LoraSettings(parts=["decoder"]), "unknown model part 'decoder'"),
        (LoraSettings(target_modules=["fc1"]), r"LoRA targets \['fc1'\] are not Linear layers"),
        (LoraSettings(trainable_parts=["projector"]), r"\['projector'\] cannot take LoRA and train in full"),
    ],
)
def test_lora_setting_errors_name_the_thing(base, settings, message):
    with pytest.raises(ValueError, match=message):
        add_lora(base, settings)


def test_qlora_quantizes_only_the_language_model(tiny_model_dir):
    import bitsandbytes as bnb

    model = load_base(tiny_model_dir, LoadSettings(quantization="4bit"))
    assert isinstance(model.model.language_model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    assert type(model.model.multi_modal_projector.linear_1) is nn.Linear
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in model.model.vision_tower.modules())
    peft_model = add_lora(model, LoraSettings())
    assert trainable_parameters(peft_model) == 19968


def test_attention_and_dtype_defaults_on_cpu():
    settings = LoadSettings()
    assert settings.torch_dtype() == torch.float32 and settings.attention() == "sdpa"
    assert LoadSettings(dtype="bfloat16").torch_dtype() == torch.bfloat16


def test_gradient_checkpointing_runs(tiny_model_dir):
    import numpy as np

    model = add_lora(load_base(tiny_model_dir, LoadSettings(gradient_checkpointing=True)), LoraSettings())
    model.train()
    processor = internvl.from_pretrained(tiny_model_dir)
    batch = processor.collate([processor("hi", "Positive.", videos=[np.zeros((2, 56, 56, 3), np.uint8)])])
    model(**batch).loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_resolve_native_directory_and_clear_errors(tiny_model_dir, tmp_path):
    assert resolve_model_path(tiny_model_dir, tmp_path) == tiny_model_dir
    with pytest.raises(FileNotFoundError, match=r"hf download OpenGVLab/InternVL2-4B --local-dir DIR"):
        resolve_model_path("OpenGVLab/InternVL2-4B", tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(FileNotFoundError, match="not an InternVL model directory"):
        resolve_model_path(other, tmp_path)


def test_attention_group_follows_the_backbones_layout(base):
    model = add_lora(base, LoraSettings(r=4, parts=["language_model"], target_modules=["attention_qkv"]))
    adapted = {
        n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if ".lora_A" in n
    }
    assert adapted == {"q_proj", "k_proj", "v_proj"}  # the tiny model is Qwen2: separate projections
    phi3 = ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"]  # InternVL2-4B's fused layout
    assert _expand_groups(["attention_qkv"], phi3) == ["qkv_proj"]
    assert _expand_groups(["attention_qkv"], ["fc1"]) == ["attention_qkv"]  # nothing there: an error later


def test_the_backbone_resolves_loads_and_names_its_parts(tiny_model_dir, tmp_path):
    backbone = InternVL(str(tiny_model_dir), str(tmp_path)).resolved()
    assert backbone.path == str(tiny_model_dir) and backbone.parts == PARTS  # native: used as is
    model = backbone.load(LoadSettings())
    assert not any(p.requires_grad for p in model.parameters())
    assert all(
        any(n.startswith(prefix + ".") for n, _ in model.named_parameters()) for prefix in PARTS.values()
    )


def test_a_model_path_that_is_a_path_is_not_looked_up_on_the_hub(tmp_path):
    (tmp_path / "a.csv").write_text("x")
    with pytest.raises(FileNotFoundError, match="a.csv: is a file, not a model directory"):
        resolve_model_path(tmp_path / "a.csv", tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="nope: no such directory"):
        resolve_model_path(tmp_path / "nope", tmp_path / "cache")

"""python -m m2se.export: the merged folder loads with plain transformers and answers as the adapter on
its base; the original layout is convert's exact inverse; the card and settings say how it was made."""

import contextlib
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForImageTextToText,
    AutoTokenizer,
    InternVLConfig,
    InternVLForConditionalGeneration,
)

from m2se.audio_settings import AudioSettings
from m2se.data import internvl
from m2se.export import main
from m2se.model.adapters import Adapter, merge, read_adapters, save_adapter
from m2se.model.audio import evaluated_settings
from m2se.model.convert import convert_checkpoint
from m2se.model.internvl import InternVL, load_base
from m2se.model.module import M2SEModule
from m2se.model.tiny import build_tiny_audio_encoder
from tests.model.original_layout import CHECKPOINTS
from tests.model.trained_runs import MANIFEST, random_lora

SYSTEM = "You are an sentiment and emotion analysis expert."


def export(tmp_path, ckpt, name: str, *args: str):
    out = tmp_path / name
    assert main([f"ckpt={ckpt}", f"out={out}", *args]) == 0
    return out


@pytest.fixture(scope="module")
def exported(trained_runs, tmp_path_factory):
    """The second stage's adapter exported: native fp32, native bf16 and original bf16."""
    adapter, root = trained_runs / "runs/second/adapter", tmp_path_factory.mktemp("exported")
    return {
        "adapter": adapter,
        "fp32": export(root, adapter, "fp32", "dtype=fp32"),
        "bf16": export(root, adapter, "bf16"),
        "original": export(root, adapter, "original", "format=original"),
    }


@pytest.fixture(scope="module")
def prompt(tiny_model_dir):
    """A video prompt as the project writes it (system prompt included), and its pixels."""
    processor = internvl.from_pretrained(tiny_model_dir, system_prompt=SYSTEM)
    frames = np.random.default_rng(0).integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)
    sample = processor("The person says: 'hi' <emotion> Which emotion?", videos=[frames])
    return sample.input_ids[None], sample.pixel_values


def weights(folder) -> dict[str, torch.Tensor]:
    """The weights a model folder loads as, in its saved dtype (native files name them in transformers'
    checkpoint layout, convert in the module layout: both load the same)."""
    return InternVLForConditionalGeneration.from_pretrained(folder, dtype="auto").state_dict()


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names whose tensors differ in any bit or dtype (or are missing from one side)."""
    return sorted(
        k
        for k in a.keys() | b.keys()
        if k not in a or k not in b or a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])
    )


def logits(model, ids, pixels):
    with torch.no_grad():
        return model(input_ids=ids, pixel_values=pixels.to(model.dtype)).logits.float()


def test_plain_transformers_load_the_export_and_answer_as_the_adapter_on_its_base(
    exported, tiny_model_dir, prompt
):
    ids, pixels = prompt
    reference = merge(load_base(tiny_model_dir), read_adapters(exported["adapter"])).eval()
    model = AutoModelForImageTextToText.from_pretrained(exported["fp32"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(exported["fp32"])
    # A user turn without a system message gets the trained system prompt: the project's prompt, exactly.
    frames = "".join(f"Frame{i}: <img>{'<IMG_CONTEXT>' * 4}</img>\n" for i in (1, 2))
    user = [{"role": "user", "content": frames + "The person says: 'hi' <emotion> Which emotion?"}]
    text = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    assert text.startswith(f"<|system|>\n{SYSTEM}<|end|>")
    assert tokenizer(text, add_special_tokens=False).input_ids == ids[0].tolist()
    expected = logits(reference, ids, pixels)
    torch.testing.assert_close(logits(model, ids, pixels), expected)
    base = logits(load_base(tiny_model_dir).eval(), ids, pixels)
    assert (base - expected).abs().max() > 1e-2  # the merged LoRA and projector matter
    settings = dict(max_new_tokens=8, do_sample=False, min_new_tokens=8)
    with torch.no_grad():
        answer = model.generate(input_ids=ids, pixel_values=pixels, **settings)
        assert torch.equal(answer, reference.generate(input_ids=ids, pixel_values=pixels, **settings))
    # bf16: the same weights rounded once, after the fp32 merge.
    half = load_file(exported["bf16"] / "model.safetensors")
    full = load_file(exported["fp32"] / "model.safetensors")
    assert half.keys() == full.keys() and all(half[k].dtype == torch.bfloat16 for k in half)
    assert all(torch.equal(half[k], full[k].to(torch.bfloat16)) for k in half)
    assert read_adapters(exported["fp32"]) == []  # the export is the model: nothing left to merge


def test_the_original_layout_converts_back_to_the_native_export_bit_for_bit(exported, tmp_path):
    original = exported["original"]
    config = json.loads((original / "config.json").read_text())
    assert config["architectures"] == ["InternVLChatModel"] and config["template"] == "phi3-chat"
    assert (
        config["auto_map"]["AutoModel"] == "OpenGVLab/InternVL2-1B--modeling_internvl_chat.InternVLChatModel"
    )
    assert config["system_message"] == SYSTEM and config["max_dynamic_patch"] == 4  # the demo's max_tiles
    assert not list(original.glob("*.py"))  # the model code is named, never copied
    tokenizer_config = json.loads((original / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"  # a name transformers 4.x knows
    assert {"vision_model.encoder.layers.0.attn.qkv.weight", "mlp1.1.weight"} <= load_file(
        original / "model.safetensors"
    ).keys()
    report = convert_checkpoint(original, tmp_path / "back")
    assert report.ok and not report.unmapped, report.lines()
    native = weights(exported["bf16"])
    assert same(weights(tmp_path / "back"), native) == [] and native["lm_head.weight"].dtype == torch.bfloat16
    plain = InternVLConfig.from_pretrained(exported["bf16"]).to_dict()
    again = InternVLConfig.from_pretrained(tmp_path / "back").to_dict()
    assert {k: v for k, v in again.items() if k != "_name_or_path"} == {
        k: v for k, v in plain.items() if k != "_name_or_path"
    }
    # The converted-back tokenizer writes the same prompts, trained system prompt included.
    user = [{"role": "user", "content": "Q"}]
    render = lambda folder: AutoTokenizer.from_pretrained(folder).apply_chat_template(user, tokenize=False)  # noqa: E731
    assert render(tmp_path / "back") == render(exported["bf16"])


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_every_original_family_exports_back_to_its_layout(converted, name, tmp_path):
    c = converted(name)  # a base converted from an original checkpoint: its tokenizer files are known
    model = random_lora(load_base(c.dst), seed=3)
    adapter = save_adapter([Adapter.of(model)], tmp_path / "run/adapter", str(c.dst))
    native = export(tmp_path, adapter, "native", "dtype=fp32")
    original = export(tmp_path, adapter, "original", "dtype=fp32", "format=original")
    source = json.loads((c.src / "config.json").read_text())
    config = json.loads((original / "config.json").read_text())
    assert (
        config["template"] == source["template"]
        and config["llm_config"]["architectures"] == source["llm_config"]["architectures"]
    )
    for file in c.src.glob("tokenizer*"):  # the LLM's own tokenizer files, as released
        copied = (original / file.name).read_bytes()
        assert copied == file.read_bytes() or "auto_map" in json.loads(copied)
    if "auto_map" in json.loads(
        (c.src / "tokenizer_config.json").read_text()
    ):  # InternLM2's own code, by repo id
        auto_map = json.loads((original / "tokenizer_config.json").read_text())["auto_map"]
        assert auto_map["AutoTokenizer"][0].startswith("OpenGVLab/InternVL2")
    assert convert_checkpoint(original, tmp_path / "back").ok
    assert same(weights(tmp_path / "back"), weights(native)) == []


def test_settings_and_card_come_from_the_training_runs(exported, trained_runs):
    record = json.loads((exported["bf16"] / "m2se_export.json").read_text())
    assert record["format"] == "native" and record["dtype"] == "bfloat16" and not record["audio"]
    assert record["processor"] == {
        "system_prompt": SYSTEM, "max_length": 1024, "over_budget": "truncate", "num_frames": 4,
        "max_tiles": 4, "use_thumbnail": True, "video_resize": "decoder", "tile_size": 56, "tokens_per_tile": 4,
    }  # fmt: skip
    assert record["settings_from"].endswith("runs/second/.hydra/config.yaml")
    card = (exported["bf16"] / "README.md").read_text()
    assert "### Stage 1: `" in card and "### Stage 2: `" in card  # followed ckpt= back to stage one
    assert (
        "`first` {msa: 3, mer: 1, fer: 3}" in card and "`second` {msa: 1, eri: 2, erc: 2, ecpe: 6}" in card
    )  # the demo's mixture
    assert "parts=['language_model']" in card and "trained in full=['projector']" in card
    assert (
        MANIFEST["stages"]["first_stage"]["sha256"] in card
        and MANIFEST["sources"]["msa_train.json"]["sha256"] in card
    )
    assert "| erc | 40 | 0.6250 | 0.5000 |" in card and str(trained_runs / "eval") in card
    assert "AutoModelForImageTextToText" in card
    assert "trust_remote_code" in (exported["original"] / "README.md").read_text()


def test_without_run_folders_the_settings_are_the_defaults_and_the_recipe_unknown(trained_runs, tmp_path):
    adapter = shutil.copytree(trained_runs / "runs/second/adapter", tmp_path / "a" / "b" / "adapter")
    out = export(tmp_path, adapter, "out")
    record = json.loads((out / "m2se_export.json").read_text())
    assert record["processor"]["num_frames"] == 8 and record["processor"]["max_length"] == 4096
    assert "conf/data/shared/datamodule.yaml" in record["settings_from"]
    card = (out / "README.md").read_text()
    assert "unknown: no Hydra run folder" in card and "Not evaluated" in card
    # results= names an evaluation explicitly
    out = export(tmp_path, adapter, "with_results", f"results={trained_runs / 'eval'}")
    assert "| erc | 40 | 0.6250 |" in (out / "README.md").read_text()


def test_large_models_are_sharded(trained_runs, tmp_path):
    adapter = trained_runs / "runs/second/adapter"
    for form in ("native", "original"):
        out = export(tmp_path, adapter, form, f"format={form}", "max_shard_size=100KB")
        index = json.loads((out / "model.safetensors.index.json").read_text())
        assert len(set(index["weight_map"].values())) > 2 and not (out / "model.safetensors").exists()
    assert AutoModelForImageTextToText.from_pretrained(tmp_path / "native") is not None
    assert convert_checkpoint(tmp_path / "original", tmp_path / "back").ok


@pytest.fixture(scope="module")
def hubert(tmp_path_factory):
    return build_tiny_audio_encoder(tmp_path_factory.mktemp("hubert") / "tiny-hubert")


def module_from(ckpt, model_dir) -> M2SEModule:
    """The module evaluate.py builds for ``ckpt``: hearing what it was trained with, on ``model_dir``."""
    heard = evaluated_settings(AudioSettings(), str(ckpt))
    processor = internvl.from_pretrained(model_dir, audio=heard)
    return M2SEModule(InternVL(str(model_dir)), processor, init_from=str(ckpt)).eval()


def test_an_audio_adapter_exports_with_its_audio_parts_and_hears_the_same(tiny_model_dir, hubert, tmp_path):
    audio = {"encoder": str(hubert), "tokens": 4, "max_seconds": 2.0}
    trained = M2SEModule(InternVL(str(tiny_model_dir)), internvl.from_pretrained(tiny_model_dir, audio=audio))
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():  # as if trained: the LoRA and the audio projector
        for p in trained.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    adapter = trained.save_adapter(tmp_path / "run" / "adapter")
    exported = export(tmp_path, adapter, "export", "dtype=fp32")
    assert json.loads((exported / "m2se_export.json").read_text())["audio"] is True
    assert load_file(exported / "audio.safetensors").keys() == load_file(adapter / "audio.safetensors").keys()
    assert "ignores these files" in (exported / "README.md").read_text()
    modules = [module_from(adapter, tiny_model_dir), module_from(exported, exported)]
    assert modules[1].merged == [] and modules[1].extra_tokens is not None
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)
    sound = rng.standard_normal(16000).astype(np.float32)
    batch = modules[0].processor.collate(
        [modules[0].processor("The person says: 'hi' [emotion]", videos=[frames], audio=sound)]
    )
    assert batch["audio_mask"].sum() == 4

    def heard(module, with_audio: bool = True):
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")}
        with torch.no_grad(), module.placed(batch) if with_audio else contextlib.nullcontext():
            return module.model(**inputs).logits

    torch.testing.assert_close(heard(modules[1]), heard(modules[0]))
    assert (heard(modules[1]) - heard(modules[1], with_audio=False)).abs().max() > 1e-3  # the sound matters


def test_a_base_the_adapter_does_not_fit_is_one_line(trained_runs, converted, tmp_path, capsys):
    other = converted("phi3").dst  # Phi-3's fused qkv_proj: no q_proj for the LoRA
    assert (
        main([f"ckpt={trained_runs / 'runs/second/adapter'}", f"out={tmp_path / 'o'}", f"model={other}"]) == 1
    )
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: ")
        and "does not fit this model" in err
        and str(other) in err
        and "\n" not in err
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"text_config": {"rope_parameters": {"rope_type": "yarn", "factor": 2.0, "rope_theta": 1e4}}}, "rope type 'yarn' has no original Qwen2ForCausalLM form"),
        ({"vision_config": {"hidden_dropout_prob": 0.1}}, "config vision_config would not survive the original layout"),
    ],
)  # fmt: skip
def test_what_the_original_layout_cannot_hold_is_refused(
    trained_runs, tiny_model_dir, tmp_path, capsys, change, message
):
    base = shutil.copytree(tiny_model_dir, tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    for part, values in change.items():
        config[part] |= values
    (base / "config.json").write_text(json.dumps(config))
    args = [
        f"ckpt={trained_runs / 'runs/second/adapter'}",
        f"out={tmp_path / 'o'}",
        f"model={base}",
        "format=original",
    ]
    assert main(args) == 1
    assert message in capsys.readouterr().err
    assert main(args[:-1]) == 0  # the native layout holds it

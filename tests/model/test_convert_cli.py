"""The converter's command line, its inputs (shards, pytorch_model.bin) and its one-line refusals."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import InternVLForConditionalGeneration

from m2se.model.convert import convert_checkpoint, main
from tests.model.original_layout import write_original_checkpoint


def test_pytorch_bin_and_sharded_bf16_inputs_convert_alike(tmp_path):
    src, native = write_original_checkpoint(tmp_path / "sharded", "internlm2", dtype=torch.bfloat16, shards=3)
    report = convert_checkpoint(src, tmp_path / "native", max_shard_bytes=60_000)
    assert report.ok and report.dtype == "bfloat16"
    index = json.loads((tmp_path / "native" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    model = InternVLForConditionalGeneration.from_pretrained(tmp_path / "native")
    assert model.dtype == torch.bfloat16
    weights = {}
    for path in sorted(src.glob("*.safetensors")):
        weights |= load_file(path)
        path.unlink()
    (src / "model.safetensors.index.json").unlink()
    torch.save(weights, src / "pytorch_model.bin")
    assert convert_checkpoint(src, tmp_path / "from-bin").ok
    for converted_model in (model, InternVLForConditionalGeneration.from_pretrained(tmp_path / "from-bin")):
        loaded = converted_model.state_dict()
        assert all(torch.equal(v, loaded[k]) for k, v in native.state_dict().items())


@pytest.fixture
def qwen2_original(converted, tmp_path) -> Path:
    """A fresh copy of the tiny Qwen2 original, for tests that damage it."""
    return Path(shutil.copytree(converted("qwen2").src, tmp_path / "original"))


def test_cli_lists_unmapped_and_ignored_keys(qwen2_original, tmp_path, capsys):
    weights = load_file(qwen2_original / "model.safetensors")
    weights["vision_model.encoder.layers.0.attn.junk.weight"] = torch.ones(2)
    weights["language_model.model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    weights["some_head.weight"] = torch.ones(2)
    save_file(weights, str(qwen2_original / "model.safetensors"))
    assert main([str(qwen2_original), str(tmp_path / "native")]) == 0
    out = capsys.readouterr().out
    unmapped = out[out.index("unmapped original keys (2):") :].split("\n")[1:3]
    assert sorted(line.strip() for line in unmapped) == [
        "some_head.weight",
        "vision_model.encoder.layers.0.attn.junk.weight",
    ]
    assert "ignored (1): language_model.model.layers.0.self_attn.rotary_emb.inv_freq" in out
    assert out.startswith(f"converted {qwen2_original} -> {tmp_path / 'native'}: Qwen2ForCausalLM")


def test_cli_fails_when_a_native_weight_gets_no_value(qwen2_original, tmp_path, capsys):
    weights = load_file(qwen2_original / "model.safetensors")
    del weights["mlp1.3.bias"]
    save_file(weights, str(qwen2_original / "model.safetensors"))
    assert main([str(qwen2_original), str(tmp_path / "native")]) == 1
    captured = capsys.readouterr()
    assert "MISSING native weights (1):\n  model.multi_modal_projector.linear_2.bias" in captured.out
    assert captured.err.count("\n") == 1 and "1 native weights have no value" in captured.err


def _edit_config(path: Path, edit) -> None:
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config))


BROKEN = {
    "no config.json": (lambda p: (p / "config.json").unlink(), "config.json: not found"),
    "unknown llm": (
        lambda p: _edit_config(p, lambda c: c["llm_config"].update(architectures=["GemmaForCausalLM"])),
        "config.json: unknown llm architecture 'GemmaForCausalLM'",
    ),
    "InternVL3.5's Qwen3": (
        lambda p: _edit_config(p, lambda c: c["llm_config"].update(architectures=["Qwen3ForCausalLM"])),
        "'Qwen3ForCausalLM' (supported: Qwen2ForCausalLM, InternLM2ForCausalLM, Phi3ForCausalLM; "
        "a checkpoint published natively, an -hf repo, loads without conversion)",
    ),
    "system_message not a string": (
        lambda p: _edit_config(p, lambda c: c.update(system_message=["hi"])),
        "config.json: system_message is not a string or null",
    ),
    "default ps_version": (
        lambda p: _edit_config(p, lambda c: c.pop("ps_version")),
        "config.json: ps_version v1",
    ),
    "unknown template": (
        lambda p: _edit_config(p, lambda c: c.update(template="vicuna_v1.1")),
        "config.json: unknown template 'vicuna_v1.1'",
    ),
    "no weights": (lambda p: (p / "model.safetensors").unlink(), "original: no weights"),
    "weights disagree with config": (
        lambda p: _edit_config(p, lambda c: c["llm_config"].update(intermediate_size=80)),
        "model.safetensors: language_model.model.layers.0.mlp.down_proj.weight -> ",
    ),
    "no tokenizer": (lambda p: (p / "vocab.json").unlink(), "original: no tokenizer"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_cli_errors_are_one_line_naming_the_file(qwen2_original, tmp_path, capsys, case):
    damage, message = BROKEN[case]
    damage(qwen2_original)
    assert main([str(qwen2_original), str(tmp_path / "native")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert message in err, err
    assert not (tmp_path / "native").exists()  # nothing half-written is left behind


def test_cli_refuses_a_native_checkpoint_and_a_non_empty_destination(tiny_model_dir, qwen2_original, capsys):
    assert main([str(tiny_model_dir), str(qwen2_original.parent / "out")]) == 2
    assert "is not ['InternVLChatModel'] (already native?)" in capsys.readouterr().err
    assert main([str(qwen2_original), str(tiny_model_dir)]) == 2
    assert f"{tiny_model_dir}: exists and is not an empty directory" in capsys.readouterr().err


def test_model_configs_convert_an_original_once_into_the_cache(converted, tmp_path):
    from m2se.model.internvl import resolve_model_path

    original = converted("qwen2").src
    native = resolve_model_path(original, tmp_path / "cache")
    assert native.parent == tmp_path / "cache" and (native / "config.json").is_file()
    stamp = (native / "config.json").stat().st_mtime_ns
    assert resolve_model_path(original, tmp_path / "cache") == native  # converted once, then reused
    assert (native / "config.json").stat().st_mtime_ns == stamp
    assert InternVLForConditionalGeneration.from_pretrained(native).config.model_type == "internvl"

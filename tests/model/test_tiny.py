import math

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, InternVLForConditionalGeneration

from m2se.model.tiny import build_tiny_internvl, main


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return InternVLForConditionalGeneration.from_pretrained(tiny_model_dir).eval()


def test_loads_offline_with_matching_ids(model, tokenizer):
    config = model.config
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert config.text_config.vocab_size >= len(tokenizer)
    assert config.image_seq_length == 4  # 56-px tile, patch 14 → 4×4 patches, pixel shuffle 0.5 → 2×2
    assert tokenizer.eos_token == "<|end|>"
    assert tokenizer.pad_token_id not in (None, tokenizer.eos_token_id)
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    for token in ("<img>", "</img>", "<IMG_CONTEXT>", "<|system|>", "<|user|>", "<|assistant|>"):
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, token


def test_chat_template_is_phi3_chat(tokenizer):
    messages = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "USER"},
        {"role": "assistant", "content": "ANSWER"},
    ]
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert full == "<|system|>\nSYS<|end|><|user|>\nUSER<|end|><|assistant|>\nANSWER<|end|>"
    assert prompt == "<|system|>\nSYS<|end|><|user|>\nUSER<|end|><|assistant|>\n"


def test_forward_with_image_tokens_gives_finite_loss(model, tokenizer):
    n = model.config.image_seq_length
    text = f"<|user|>\nFrame1: <img>{'<IMG_CONTEXT>' * n}</img>\nThe person says: 'hi'<|end|><|assistant|>\nJoy.<|end|>"
    input_ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    pixel_values = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss = model(input_ids=input_ids, pixel_values=pixel_values, labels=input_ids).loss
    # The larger text init range makes initial logits wider than uniform, not wild.
    assert math.isfinite(loss.item())
    assert 0.5 * math.log(len(tokenizer)) < loss.item() < 3 * math.log(len(tokenizer))


def test_same_seed_gives_identical_model_and_tokenizer(tmp_path):
    rng_state = torch.random.get_rng_state()
    a = build_tiny_internvl(tmp_path / "a", seed=3)
    b = build_tiny_internvl(tmp_path / "b", seed=3)
    c = build_tiny_internvl(tmp_path / "c", seed=4)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # the global RNG is left alone
    weights_a, weights_b, weights_c = (load_file(d / "model.safetensors") for d in (a, b, c))
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert not all(torch.equal(weights_a[k], weights_c[k]) for k in weights_a)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()


def test_cli_writes_and_reports(tmp_path, capsys):
    main(["--out", str(tmp_path / "tiny"), "--seed", "1"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert str(tmp_path / "tiny") in line and "tokens per 56-px tile" in line
    assert (tmp_path / "tiny" / "config.json").exists()


def test_the_builders_never_write_into_a_folder_with_files(tmp_path, capsys):
    from m2se.model import tiny_qwen

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    for build in (main, tiny_qwen.main):
        with pytest.raises(SystemExit):
            build(["--out", str(taken)])
        assert "exists and is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    main(["--out", str(taken), "--overwrite"])  # what make demo does with its own folder
    assert (taken / "config.json").is_file()

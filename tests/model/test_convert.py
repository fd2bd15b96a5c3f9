"""Original InternVL2 checkpoints (tiny, random, original layout, built in code) → native InternVL."""

import json
import re
import shutil
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, GenerationConfig, InternVLForConditionalGeneration
from transformers.convert_slow_tokenizer import import_protobuf

from m2se.data.processor import M2SEProcessor
from m2se.model.convert import ConversionReport, convert_checkpoint, convert_tokenizer, main
from tests.model.original_layout import (
    BACKBONES,
    TEMPLATES,
    TILE,
    write_original_checkpoint,
    write_sentencepiece_tokenizer,
)

# InternVL's conversation.py (shipped with every InternVL2 checkpoint): SeparatorStyle.MPT templates as
# (system_template, (user role, assistant role), sep), and the system message they default to.
CONVERSATIONS = {
    "Hermes-2": (
        "<|im_start|>system\n{system_message}",
        ("<|im_start|>user\n", "<|im_start|>assistant\n"),
        "<|im_end|>",
    ),
    "internlm2-chat": (
        "<|im_start|>system\n{system_message}",
        ("<|im_start|>user\n", "<|im_start|>assistant\n"),
        "<|im_end|>",
    ),
    "phi3-chat": ("<|system|>\n{system_message}", ("<|user|>\n", "<|assistant|>\n"), "<|end|>"),
}
INTERNVL_SYSTEM = "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。"


def mpt_prompt(template: str, system: str, turns: list[tuple[str, str | None]]) -> str:
    """Conversation.get_prompt() for SeparatorStyle.MPT."""
    system_template, (user, assistant), sep = CONVERSATIONS[template]
    prompt = system_template.format(system_message=system) + sep
    for question, answer in turns:
        prompt += user + question + sep + assistant + (answer + sep if answer else "")
    return prompt


@dataclass
class Converted:
    src: Path
    dst: Path
    native: InternVLForConditionalGeneration  # the model the original checkpoint was written from
    report: ConversionReport
    model: InternVLForConditionalGeneration  # loaded back from dst
    tokenizer: object


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    cache: dict[str, Converted] = {}

    def get(backbone: str) -> Converted:
        if backbone not in cache:
            root = tmp_path_factory.mktemp(backbone)
            src, native = write_original_checkpoint(root / "original", backbone)
            report = convert_checkpoint(src, root / "native")
            model = InternVLForConditionalGeneration.from_pretrained(root / "native").eval()
            cache[backbone] = Converted(
                src, root / "native", native, report, model, AutoTokenizer.from_pretrained(root / "native")
            )
        return cache[backbone]

    return get


def image_prompt(c: Converted, text: str = "The person says: 'hi' <emotion> Which emotion?") -> torch.Tensor:
    n = c.model.config.image_seq_length
    user = f"Frame1: <img>{'<IMG_CONTEXT>' * n}</img>\n{text}"
    messages = [{"role": "system", "content": "You are an sentiment and emotion analysis expert."}]
    prompt = c.tokenizer.apply_chat_template(
        [*messages, {"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
    )
    return c.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids


def logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    pixel_values = torch.randn(1, 3, TILE, TILE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(input_ids=input_ids, pixel_values=pixel_values.to(model.dtype)).logits


@pytest.mark.parametrize("backbone", BACKBONES)
def test_converted_model_has_the_same_weights_and_logits(converted, backbone):
    c = converted(backbone)
    assert c.report.ok and not c.report.unmapped and not c.report.ignored, c.report.lines()
    original_keys = load_file(c.src / "model.safetensors").keys()
    assert c.report.source_tensors == len(original_keys)
    native, loaded = c.native.state_dict(), c.model.state_dict()
    assert native.keys() == loaded.keys()
    assert [k for k in native if not torch.equal(native[k], loaded[k])] == []
    ids = image_prompt(c)
    assert (ids == c.model.config.image_token_id).sum() == 4  # (56/14)² patches × 0.5² pixel shuffle
    torch.testing.assert_close(logits(c.model, ids), logits(c.native, ids), rtol=0, atol=1e-6)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_config_carries_image_geometry_and_the_checkpoints_image_token(converted, backbone):
    c = converted(backbone)
    original = json.loads((c.src / "config.json").read_text())
    decoder = json.loads((c.src / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    context_id = next(int(i) for i, t in decoder.items() if t["content"] == "<IMG_CONTEXT>")
    config = c.model.config
    assert config.image_token_id == context_id == c.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert c.report.image_token_id == context_id
    assert (config.image_seq_length, config.downsample_ratio, config.vision_feature_layer) == (4, 0.5, -1)
    assert config.vision_config.image_size == [TILE, TILE]
    tied = original["llm_config"]["tie_word_embeddings"]
    assert config.tie_word_embeddings == config.text_config.tie_word_embeddings == tied
    assert config.text_config.vocab_size >= len(c.tokenizer)
    for token in ("<img>", "</img>", "<IMG_CONTEXT>"):
        assert len(c.tokenizer(token, add_special_tokens=False).input_ids) == 1


@pytest.mark.parametrize("backbone", BACKBONES)
def test_chat_template_writes_the_checkpoints_conversation(converted, backbone):
    c = converted(backbone)
    template = TEMPLATES[backbone]
    sep = CONVERSATIONS[template][2]
    bos = (
        "<s>" if backbone == "internlm2" else ""
    )  # InternLM2's tokenizer adds BOS; these Qwen2/Phi-3 ones do not
    turns = [("Q1", "A1"), ("Q2", None)]
    messages = [{"role": "system", "content": "SYS"}]
    for question, answer in turns:
        messages.append({"role": "user", "content": question})
        if answer:
            messages.append({"role": "assistant", "content": answer})
    render = c.tokenizer.apply_chat_template
    assert render(messages, tokenize=False, add_generation_prompt=True) == bos + mpt_prompt(
        template, "SYS", turns
    )
    full = [*messages, {"role": "assistant", "content": "A2"}]
    assert render(full, tokenize=False) == bos + mpt_prompt(template, "SYS", [("Q1", "A1"), ("Q2", "A2")])
    # No system message given: the checkpoint's default one, as InternVLChatModel.chat writes it.
    assert render(messages[1:2], tokenize=False, add_generation_prompt=True) == bos + mpt_prompt(
        template, INTERNVL_SYSTEM, [("Q1", None)]
    )
    # The answer ends with the turn end, which is eos and what generation stops on.
    assert c.tokenizer.eos_token == sep
    assert GenerationConfig.from_pretrained(c.dst).eos_token_id == c.tokenizer.eos_token_id
    ids = c.tokenizer(render(full, tokenize=False), add_special_tokens=False).input_ids
    assert ids[-1] == c.tokenizer.eos_token_id
    # The template writes the BOS exactly when the checkpoint's tokenizer adds one to plain text.
    assert (ids[0] == c.tokenizer.bos_token_id) == bool(bos)
    assert (c.tokenizer("Q1").input_ids[0] == c.tokenizer.bos_token_id) == bool(bos)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_the_projects_processor_accepts_the_converted_directory(converted, backbone):
    c = converted(backbone)
    processor = M2SEProcessor.from_pretrained(c.dst)
    assert (processor.tile_size, processor.tokens_per_tile) == (TILE, 4)
    frames = torch.randint(0, 256, (2, TILE, TILE, 3), dtype=torch.uint8).numpy()
    sample = processor("The person says: 'hi'", "Joy.", videos=[frames])
    answer = sample.input_ids[sample.labels != -100].tolist()
    assert processor.tokenizer.decode(answer) == "Joy." + CONVERSATIONS[TEMPLATES[backbone]][2]
    batch = processor.collate([sample])
    with torch.no_grad():
        assert torch.isfinite(c.model(**batch).loss)


def test_internlm2_wqkv_split_matches_the_original_unpacking(converted):
    c = converted("internlm2")
    llm = json.loads((c.src / "config.json").read_text())["llm_config"]
    heads, kv_heads, hidden = llm["num_attention_heads"], llm["num_key_value_heads"], llm["hidden_size"]
    head_dim, groups = hidden // heads, heads // kv_heads
    wqkv = load_file(c.src / "model.safetensors")["language_model.model.layers.1.attention.wqkv.weight"]
    x = torch.randn(1, 5, hidden, generator=torch.Generator().manual_seed(0))
    # InternLM2Attention.forward: rearrange(wqkv(x), 'b q (h gs d) -> b q h gs d', gs=2 + groups, d=head_dim),
    # queries = [..., :groups, :] as 'b q (h gs) d', keys = [..., -2, :], values = [..., -1, :].
    qkv = (x @ wqkv.T).reshape(1, 5, kv_heads, groups + 2, head_dim)
    q, k, v = qkv[..., :groups, :].reshape(1, 5, heads, head_dim), qkv[..., -2, :], qkv[..., -1, :]
    attention = c.model.model.language_model.layers[1].self_attn
    with torch.no_grad():
        torch.testing.assert_close(attention.q_proj(x).view(1, 5, heads, head_dim), q)
        torch.testing.assert_close(attention.k_proj(x).view(1, 5, kv_heads, head_dim), k)
        torch.testing.assert_close(attention.v_proj(x).view(1, 5, kv_heads, head_dim), v)


def test_phi3_su_rope_scaling_becomes_longrope_and_matters(converted):
    c = converted("phi3")
    llm = json.loads((c.src / "config.json").read_text())["llm_config"]
    assert llm["rope_scaling"]["type"] == "su"
    rope = c.model.config.text_config.rope_parameters
    assert rope["rope_type"] == "longrope"
    assert rope["original_max_position_embeddings"] == llm["original_max_position_embeddings"] == 32
    assert rope["factor"] == llm["max_position_embeddings"] / 32
    assert rope["short_factor"] == pytest.approx(llm["rope_scaling"]["short_factor"])
    assert rope["long_factor"] == pytest.approx(llm["rope_scaling"]["long_factor"])
    # Past the original length the long factors take over; still the same logits as the source model.
    long_ids = image_prompt(c, "The person says: " + "Ross Rachel Monica " * 20)
    assert long_ids.shape[1] > 2 * 32
    torch.testing.assert_close(logits(c.model, long_ids), logits(c.native, long_ids), rtol=0, atol=1e-6)
    # Dropping the scaling changes the logits badly: the check above would catch a lost rope_scaling.
    config = c.model.config.__class__.from_dict(c.model.config.to_dict())
    config.text_config.rope_parameters = {"rope_type": "default", "rope_theta": rope["rope_theta"]}
    plain = InternVLForConditionalGeneration(config).eval()
    plain.load_state_dict(c.model.state_dict())
    for ids in (image_prompt(c), long_ids):
        good, bad = logits(c.model, ids), logits(plain, ids)
        assert (good - bad).abs().max() > 0.5 * good.std()


def sentencepiece_reference(model_file: Path, added: dict[str, int], text: str) -> list[int]:
    """sentencepiece BPE as InternLM2's slow tokenizer applies it: split on added tokens; per piece, ▁ for
    spaces (and a leading one with add_dummy_prefix), merge the adjacent pair whose result scores highest
    (leftmost first) until none is in the vocabulary, then bytes for characters it lacks."""
    proto = import_protobuf().ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
    scores = {p.piece: p.score for p in proto.pieces if p.type == 1}
    byte_ids = {int(p.piece[3:5], 16): i for i, p in enumerate(proto.pieces) if p.type == 6}
    ids: list[int] = []
    for segment in re.split("(" + "|".join(map(re.escape, added)) + ")", text):
        if segment in added:
            ids.append(added[segment])
            continue
        if not segment:
            continue
        symbols = list(("▁" if proto.normalizer_spec.add_dummy_prefix else "") + segment.replace(" ", "▁"))
        while True:
            pairs = [(scores[a + b], -i) for i, (a, b) in enumerate(pairwise(symbols)) if a + b in scores]
            if not pairs:
                break
            i = -max(pairs)[1]
            symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
        for symbol in symbols:
            ids += [vocab[symbol]] if symbol in vocab else [byte_ids[b] for b in symbol.encode()]
    return ids


@pytest.mark.parametrize("add_dummy_prefix", [True, False])
def test_sentencepiece_tokenizer_converts_without_sentencepiece(tmp_path, add_dummy_prefix):
    write_sentencepiece_tokenizer(tmp_path, add_dummy_prefix)
    notes: list[str] = []
    tokenizer = convert_tokenizer(tmp_path, "internlm2-chat", notes)
    decoder = json.loads((tmp_path / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    added = {t["content"]: int(i) for i, t in decoder.items()}
    n_pieces = added["<img>"]
    # tokenizer_config renames the last two sentencepiece slots; they keep their ids.
    assert (added["<|im_end|>"], added["<|im_start|>"]) == (n_pieces - 2, n_pieces - 1)
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in added} == added
    assert notes == []
    texts = [
        "The person says: 'I can't believe you did that!' <emotion> Please determine",
        "<|im_start|>user\nFrame1: <img><IMG_CONTEXT></img>\nhi<|im_end|><|im_start|>assistant\nJoy.<|im_end|>",
        "  two  spaces, naïve 東京 😀\ttab",
    ]
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert ids == sentencepiece_reference(tmp_path / "tokenizer.model", added, text), text
        if not add_dummy_prefix:  # with it, each piece after an added token decodes with its ▁ as a space
            assert tokenizer.decode(ids) == text
    assert tokenizer("hi").input_ids[0] == tokenizer.bos_token_id == added["<s>"]  # add_bos_token


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

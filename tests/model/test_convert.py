"""Original InternVL2/2.5/3 checkpoints (tiny, random, original layout, built in code) → native InternVL.

Equivalence is shown against the native model each original was written from (original_layout):
same weights, same logits, and the chat template writing the conversation InternVL's own code writes.
"""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, GenerationConfig, InternVLForConditionalGeneration

from m2se.data import internvl
from m2se.model.convert import convert_checkpoint
from tests.model.conftest import Converted
from tests.model.original_layout import CHECKPOINTS, TILE

# InternVL's conversation.py (shipped with every original checkpoint): SeparatorStyle.MPT templates as
# (system_template, (user role, assistant role), sep, the system message they default to).
INTERNVL2_SYSTEM = "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。"
INTERNVL2_5_SYSTEM = "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"
CHATML = ("<|im_start|>system\n{system_message}", ("<|im_start|>user\n", "<|im_start|>assistant\n"))
CONVERSATIONS = {
    "Hermes-2": (*CHATML, "<|im_end|>", INTERNVL2_SYSTEM),
    "internlm2-chat": (*CHATML, "<|im_end|>", INTERNVL2_SYSTEM),
    "phi3-chat": (
        "<|system|>\n{system_message}",
        ("<|user|>\n", "<|assistant|>\n"),
        "<|end|>",
        INTERNVL2_SYSTEM,
    ),
    "internvl2_5": (*CHATML, "<|im_end|>\n", INTERNVL2_5_SYSTEM),
}


def mpt_prompt(template: str, system: str | None, turns: list[tuple[str, str | None]]) -> str:
    """Conversation.get_prompt() for SeparatorStyle.MPT; system None: the template's default."""
    system_template, (user, assistant), sep, default = CONVERSATIONS[template]
    prompt = system_template.format(system_message=default if system is None else system) + sep
    for question, answer in turns:
        prompt += user + question + sep + assistant + (answer + sep if answer else "")
    return prompt


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


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_converted_model_has_the_same_weights_and_logits(converted, name):
    c = converted(name)
    assert c.report.ok and not c.report.unmapped and not c.report.ignored, c.report.lines()
    original_keys = load_file(c.src / "model.safetensors").keys()
    assert c.report.source_tensors == len(original_keys)
    native, loaded = c.native.state_dict(), c.model.state_dict()
    assert native.keys() == loaded.keys()
    assert [k for k in native if not torch.equal(native[k], loaded[k])] == []
    ids = image_prompt(c)
    assert (ids == c.model.config.image_token_id).sum() == 4  # (56/14)² patches × 0.5² pixel shuffle
    torch.testing.assert_close(logits(c.model, ids), logits(c.native, ids), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_config_carries_image_geometry_and_the_checkpoints_image_token(converted, name):
    c = converted(name)
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


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_chat_template_writes_the_checkpoints_conversation(converted, name):
    c = converted(name)
    template = CHECKPOINTS[name].template
    sep = CONVERSATIONS[template][2]
    bos = (
        "<s>" if CHECKPOINTS[name].llm == "internlm2" else ""
    )  # InternLM2's tokenizer adds BOS, the others not
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
        template, None, [("Q1", None)]
    )
    # The answer ends with the turn end (sep; internvl2_5 puts a newline after it), whose token is eos
    # and what generation stops on, as chat() stops on sep.strip().
    assert c.tokenizer.eos_token == sep.strip()
    assert GenerationConfig.from_pretrained(c.dst).eos_token_id == c.tokenizer.eos_token_id
    ids = c.tokenizer(render(full, tokenize=False), add_special_tokens=False).input_ids
    last_end = len(ids) - 1 - ids[::-1].index(c.tokenizer.eos_token_id)
    assert c.tokenizer.decode(ids[last_end + 1 :]).strip(" ") == sep.removeprefix(sep.strip())
    # The template writes the BOS exactly when the checkpoint's tokenizer adds one to plain text.
    assert (ids[0] == c.tokenizer.bos_token_id) == bool(bos)
    assert (c.tokenizer("Q1").input_ids[0] == c.tokenizer.bos_token_id) == bool(bos)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_the_projects_processor_accepts_the_converted_directory(converted, name):
    c = converted(name)
    processor = internvl.from_pretrained(c.dst)
    assert (processor.tile_size, processor.vision.tokens_per_tile) == (TILE, 4)
    frames = torch.randint(0, 256, (2, TILE, TILE, 3), dtype=torch.uint8).numpy()
    sample = processor("The person says: 'hi'", "Joy.", videos=[frames])
    answer = sample.input_ids[sample.labels != -100].tolist()
    sep = CONVERSATIONS[CHECKPOINTS[name].template][2]
    # Labels cover the answer and the whole turn end, newline included (InternLM2's dummy prefix makes
    # that newline decode as " \n").
    assert answer == processor.tokenizer("Joy." + sep, add_special_tokens=False).input_ids
    assert processor.tokenizer.decode(answer).startswith("Joy." + sep.strip())
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


def test_qwen2_5_keeps_its_dynamic_rope_and_layer_types_and_the_scaling_matters(converted):
    c = converted("internvl3")
    llm = json.loads((c.src / "config.json").read_text())["llm_config"]
    text = c.model.config.text_config
    assert text.rope_parameters == {"rope_type": "dynamic", "rope_theta": 1e6, "factor": 2.0}
    assert text.layer_types == llm["layer_types"] and not text.use_sliding_window
    assert not c.model.config.tie_word_embeddings and "lm_head.weight" in c.model.state_dict()
    # The image prompt is longer than max_position_embeddings (32): NTK scaling acts, and matches.
    ids = image_prompt(c)
    assert ids.shape[1] > llm["max_position_embeddings"]
    config = c.model.config.__class__.from_dict(c.model.config.to_dict())
    config.text_config.rope_parameters = {"rope_type": "default", "rope_theta": 1e6}
    plain = InternVLForConditionalGeneration(config).eval()
    plain.load_state_dict(c.model.state_dict())
    good, bad = logits(c.model, ids), logits(plain, ids)
    assert (good - bad).abs().max() > 0.1 * good.std()


def test_a_system_message_in_config_json_becomes_the_templates_default(converted, tmp_path):
    src = shutil.copytree(converted("internvl3").src, tmp_path / "original")
    config = json.loads((src / "config.json").read_text())
    assert config["system_message"] is None  # as InternVL2.5/3 ship: the template's own (tested above)
    (src / "config.json").write_text(json.dumps({**config, "system_message": "Be brief."}))
    assert convert_checkpoint(src, tmp_path / "native").ok
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "native")
    messages = [{"role": "user", "content": "Q"}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == mpt_prompt("internvl2_5", "Be brief.", [("Q", None)])

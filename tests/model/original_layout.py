"""Tiny random InternVL checkpoints in the ORIGINAL (remote-code) layout, for conversion tests.

A native model is built first, with every norm gain, bias and layer scale randomised (docs/PROTOCOL.md §10: a
forgotten mapping must show), then written out the way an OpenGVLab InternVL2, InternVL2.5 or InternVL3
checkpoint is laid out: config.json with `llm_config`/`vision_config`/`template` and the leftovers the
releases carry, original weight names, and the tokenizer files of that LLM (original_tokenizers).
Fused weights are packed as the original forward code unpacks them, by the package's own mapping
(``m2se.model.export_original.original_state_dict``, what ``format=original`` exports write).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import save_file
from transformers import (
    InternVLConfig,
    InternVLForConditionalGeneration,
    LlamaConfig,
    Phi3Config,
    Qwen2Config,
)

from m2se.model.export_original import original_state_dict
from tests.model.original_tokenizers import TOKENIZER_WRITERS


class Layout(NamedTuple):
    llm: str  # LLM family: qwen2, qwen2_5, internlm2, phi3 (the tokenizer files and llm_config it ships)
    template: str  # config.json's conversation template
    six_b_vision: bool  # InternViT-6B's RMSNorm + qk-norm, no qkv bias (else InternViT-300M's LayerNorm)


# The tiny checkpoints, named by the release each stands for.
CHECKPOINTS = {
    "qwen2": Layout("qwen2", "Hermes-2", False),  # InternVL2-1B
    "internlm2": Layout(
        "internlm2", "internlm2-chat", True
    ),  # InternVL2-2B/8B (6B-style vision for coverage)
    "phi3": Layout("phi3", "phi3-chat", False),  # InternVL2-4B
    "internvl2_5": Layout("internlm2", "internvl2_5", False),  # InternVL2.5-2B/8B: InternLM2.5
    "internvl3": Layout("qwen2_5", "internvl2_5", False),  # InternVL3-1B/2B/8B, InternVL2.5-1B/4B: Qwen2.5
}
TILE, PATCH = 56, 14
# Leftovers every original sub-config carries (PretrainedConfig defaults of transformers 4.37).
CONFIG_NOISE = {"add_cross_attention": False, "do_sample": False, "max_length": 20, "use_bfloat16": True}
# What InternVL2.5/3 vision configs add: the unused MoE settings of InternViT's training code.
MOE_NOISE = {"use_moe": False, "num_experts": 8, "capacity_factor": 1.2, "moe_output_scale": 4.0}
ROTARY_DIM = 8  # head_dim 16 for every tiny LLM below


# ---------------------------------------------------------------- the model


def _text_config(llm: str, vocab_size: int) -> dict:
    common = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-6,
        initializer_range=0.2,  # logits far from uniform, so a wrong mapping or rope shows
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    if llm == "qwen2":
        return dict(common, architectures=["Qwen2ForCausalLM"], rope_theta=1e6, tie_word_embeddings=True)
    if llm == "qwen2_5":
        # As InternVL3-1B writes it: both rope keys, per-layer attention types, no sliding window,
        # untied head; a short max_position_embeddings so the dynamic rope scaling acts in the tests.
        return dict(
            common,
            architectures=["Qwen2ForCausalLM"],
            rope_theta=1e6,
            rope_scaling={"factor": 2.0, "rope_type": "dynamic", "type": "dynamic"},
            max_position_embeddings=32,
            layer_types=["full_attention"] * common["num_hidden_layers"],
            max_window_layers=70,
            use_sliding_window=False,
            sliding_window=None,
            tie_word_embeddings=False,
        )
    if llm == "internlm2":
        return dict(
            common,
            architectures=["InternLM2ForCausalLM"],
            rope_theta=1e6,
            rope_scaling={"type": "dynamic", "factor": 2.0},
            max_position_embeddings=256,
            bias=False,
            tie_word_embeddings=False,
        )
    gen = torch.Generator().manual_seed(1)
    return dict(
        common,
        architectures=["Phi3ForCausalLM"],
        rope_theta=10000.0,
        max_position_embeddings=128,
        original_max_position_embeddings=32,
        rope_scaling={
            "type": "su",
            "short_factor": (1 + torch.rand(ROTARY_DIM, generator=gen)).tolist(),
            "long_factor": (1 + 4 * torch.rand(ROTARY_DIM, generator=gen)).tolist(),
        },
        sliding_window=127,
        tie_word_embeddings=False,
    )


def _vision_config(six_b: bool) -> dict:
    """InternViT-300M style (LayerNorm, qkv bias) or InternViT-6B's (RMSNorm + qk-norm)."""
    return dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=TILE,
        patch_size=PATCH,
        qkv_bias=not six_b,
        qk_normalization=six_b,
        norm_type="rms_norm" if six_b else "layer_norm",
        layer_norm_eps=1e-6,
        hidden_act="gelu",
        initializer_factor=0.1,
    )


def _native_text_config(text: dict):
    kwargs = {
        k: v for k, v in text.items() if k not in ("architectures", "rope_scaling", "rope_theta", "bias")
    }
    scaling = dict(text.get("rope_scaling") or {"type": "default"})
    rope = {"rope_type": scaling.pop("type"), "rope_theta": text["rope_theta"], **scaling}
    if text["architectures"] == ["Phi3ForCausalLM"]:
        rope = dict(rope, rope_type="longrope", original_max_position_embeddings=32, factor=4.0)
        return Phi3Config(**kwargs, rope_parameters=rope)
    if text["architectures"] == ["InternLM2ForCausalLM"]:
        return LlamaConfig(**kwargs, rope_parameters=rope, attention_bias=text["bias"], head_dim=16)
    return Qwen2Config(**kwargs, rope_parameters=rope)


def tiny_native(
    layout: Layout, vocab_size: int, image_token_id: int, seed: int = 0
) -> InternVLForConditionalGeneration:
    """A random native InternVL whose every weight is non-trivial (norm gains and layer scales near 1)."""
    text, vision = _text_config(layout.llm, vocab_size), _vision_config(layout.six_b_vision)
    config = InternVLConfig(
        text_config=_native_text_config(text),
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=TILE,
            patch_size=PATCH,
            attention_bias=vision["qkv_bias"],
            use_qk_norm=vision["qk_normalization"],
            norm_type=vision["norm_type"],
        ),
        image_token_id=image_token_id,
        image_seq_length=int((TILE // PATCH) ** 2 * 0.25),
        tie_word_embeddings=text["tie_word_embeddings"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = InternVLForConditionalGeneration(config).eval()
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "norm" in name and name.endswith("weight") or "lambda" in name:
                    param.copy_(1 + 0.3 * torch.randn_like(param))
                elif name.endswith("bias") or "cls_token" in name or "position_embeddings" in name:
                    param.copy_(0.3 * torch.randn_like(param))
    return model


def original_config(layout: Layout, vocab_size: int) -> dict:
    text, vision = _text_config(layout.llm, vocab_size), _vision_config(layout.six_b_vision)
    model_type = layout.llm.removesuffix("_5")
    llm = dict(text, model_type=model_type, torch_dtype="bfloat16", attn_implementation="flash_attention_2")
    if layout.llm == "internlm2":
        llm["auto_map"] = {"AutoConfig": "configuration_internlm2.InternLM2Config"}
    # InternVL2.5/3 add a null system message (the template's default), an unused MoE config and more.
    later = layout.template == "internvl2_5"
    extra = dict(system_message=None, min_dynamic_patch=1, pad2square=False, image_fold=None) if later else {}
    llm |= {"moe_config": None} if later else {}
    return dict(
        architectures=["InternVLChatModel"],
        model_type="internvl_chat",
        template=layout.template,
        **extra,
        downsample_ratio=0.5,
        select_layer=-1,
        ps_version="v2",
        force_image_size=TILE,
        dynamic_image_size=True,
        use_thumbnail=True,
        max_dynamic_patch=12,
        torch_dtype="bfloat16",
        llm_config=dict(CONFIG_NOISE, **llm),
        vision_config=dict(
            CONFIG_NOISE,
            **(MOE_NOISE if later else {}),
            **vision,
            architectures=["InternVisionModel"],
            model_type="intern_vit_6b",
            use_flash_attn=True,
            drop_path_rate=0.0,
        ),
    )


def write_original_checkpoint(
    out: Path, name: str, seed: int = 0, dtype: torch.dtype = torch.float32, shards: int = 1
) -> tuple[Path, InternVLForConditionalGeneration]:
    """Write the tiny original-layout checkpoint `name` (of CHECKPOINTS); returns (out, the native model
    it encodes)."""
    layout = CHECKPOINTS[name]
    out.mkdir(parents=True)
    TOKENIZER_WRITERS[layout.llm](out)
    decoder = json.loads((out / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    ids = {entry["content"]: int(i) for i, entry in decoder.items()}
    vocab_size = max(ids.values()) + 1
    model = tiny_native(layout, vocab_size, ids["<IMG_CONTEXT>"], seed).to(dtype)
    (out / "config.json").write_text(json.dumps(original_config(layout, vocab_size), indent=2))
    weights = original_state_dict(model.state_dict(), model.config)  # the package's own mapping
    names = sorted(weights)
    if shards == 1:
        save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
        return out, model
    weight_map = {}
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: weights[k] for k in names[s::shards]}
        save_file(part, str(out / file), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(part, file)
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return out, model

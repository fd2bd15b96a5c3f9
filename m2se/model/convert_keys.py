"""What an original (remote-code) InternVL checkpoint's config, chat format and weight names become natively.

Per backbone: the text config (Qwen2/Qwen2.5 as is, InternLM2/InternLM2.5 as Llama, Phi-3 with its rope
scaling carried over), the conversation template named in config.json, and the weight-name rules.
InternVL2.5 and InternVL3 keep InternVL2's layout (InternViT + pixel-shuffle MLP + LLM, same weight
names); what changes is the LLM generation and the `internvl2_5` template. `m2se.model.convert` does
the reading and writing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from functools import partial

import torch
from transformers import LlamaConfig, Phi3Config, PreTrainedConfig, Qwen2Config

from m2se.files import dumps

# The llm_config.architectures[0] values converted. Qwen2ForCausalLM: Qwen2 (InternVL2-1B) and Qwen2.5
# (InternVL2.5-1B/4B, InternVL3-1B/2B/8B/14B); InternLM2ForCausalLM: InternLM2 (InternVL2-2B) and
# InternLM2.5 (InternVL2-8B, InternVL2.5-2B/8B); Phi3ForCausalLM: Phi-3 (InternVL2-4B). Others (Qwen3
# in InternVL3.5, Llama in InternVL2-40B/76B, ...) are refused.
BACKBONES = ("Qwen2ForCausalLM", "InternLM2ForCausalLM", "Phi3ForCausalLM")

# Keys the native class has no slot for and recomputes (old checkpoints saved rope caches).
IGNORED = re.compile(r".*\.rotary_emb\.inv_freq")


class UnsupportedConfig(ValueError):
    """The original config asks for something the native class cannot reproduce."""


# ---------------------------------------------------------------- config


def _rope_parameters(llm: dict) -> dict:
    """Original `rope_theta` + `rope_scaling` → native `rope_parameters`.

    Phi-3's `su` is LongRoPE: it needs `original_max_position_embeddings` (the pretraining length that
    switches short/long factors, docs/PROTOCOL.md §10), which Phi-3 keeps outside rope_scaling. Its cos/sin
    scale is sqrt(1 + ln(s) / ln(original)) with s = max / original max, written out as `factor`.
    """
    scaling = dict(llm.get("rope_scaling") or {})
    rope_type, legacy_type = scaling.pop("rope_type", None), scaling.pop("type", None)
    rope_type = rope_type or legacy_type or "default"
    rope_type = "longrope" if rope_type == "su" else rope_type
    params = {"rope_type": rope_type, "rope_theta": float(llm.get("rope_theta", 10000.0)), **scaling}
    if rope_type == "longrope":
        unsupported = {"short_mscale", "long_mscale"} & params.keys()
        if unsupported:
            raise UnsupportedConfig(
                f"llm_config.rope_scaling has {sorted(unsupported)}, which native longrope lacks"
            )
        original = params.get("original_max_position_embeddings") or llm.get(
            "original_max_position_embeddings"
        )
        if original is None:
            raise UnsupportedConfig("llm_config has longrope scaling but no original_max_position_embeddings")
        params["original_max_position_embeddings"] = original
        params.setdefault("factor", llm.get("max_position_embeddings", original) / original)
    elif rope_type not in ("default", "linear", "dynamic"):
        raise UnsupportedConfig(f"llm_config.rope_scaling type {rope_type!r} is not supported")
    return params


def _carried(llm: dict, config_class: type[PreTrainedConfig]) -> dict:
    """The original's fields that the native class declares (the rest are remote-code or generation leftovers)."""
    base = {f.name for f in dataclasses.fields(PreTrainedConfig)} | {"rope_parameters", "tie_word_embeddings"}
    return {k: v for k, v in llm.items() if k in {f.name for f in dataclasses.fields(config_class)} - base}


def text_config(llm: dict) -> PreTrainedConfig:
    """Native text config for the original `llm_config`."""
    arch = llm["architectures"][0]
    rope = _rope_parameters(llm)
    common = dict(rope_parameters=rope, tie_word_embeddings=bool(llm.get("tie_word_embeddings", False)))
    if arch == "Qwen2ForCausalLM":
        return Qwen2Config(**_carried(llm, Qwen2Config), **common)
    if arch == "Phi3ForCausalLM":
        kwargs = _carried(llm, Phi3Config)
        key = "original_max_position_embeddings"
        kwargs[key] = rope.get(key) or kwargs.get(key) or kwargs.get("max_position_embeddings", 4096)
        return Phi3Config(**kwargs, **common)
    if arch == "InternLM2ForCausalLM":
        if llm.get("rope_pos_id_version", "default") not in (None, "default"):
            raise UnsupportedConfig(f"llm_config.rope_pos_id_version {llm['rope_pos_id_version']!r}")
        heads = llm["num_attention_heads"]
        kwargs = _carried(llm, LlamaConfig)
        kwargs.setdefault("num_key_value_heads", heads)
        # InternLM2's `bias` (default True) covers wqkv and wo, Llama's attention_bias q/k/v/o; its MLP has none.
        kwargs |= dict(
            head_dim=llm["hidden_size"] // heads, attention_bias=bool(llm.get("bias", True)), mlp_bias=False
        )
        return LlamaConfig(**kwargs, **common)
    raise UnsupportedConfig(f"unknown llm architecture {arch!r} (supported: {', '.join(BACKBONES)})")


# InternVisionConfig's own defaults, which a checkpoint's vision_config may rely on by leaving a key out.
_VISION_DEFAULTS = dict(qkv_bias=False, qk_normalization=True, norm_type="rms_norm", layer_norm_eps=1e-6)


def vision_config(vision: dict) -> dict:
    """Native InternVLVisionConfig kwargs for the original `vision_config` (InternViT)."""
    vision = {**_VISION_DEFAULTS, **vision}
    if vision["qk_normalization"] and vision["layer_norm_eps"] != 1e-6:
        # The native q/k RMSNorm has a fixed eps of 1e-6; the original uses layer_norm_eps.
        raise UnsupportedConfig(
            f"vision_config: qk_normalization with layer_norm_eps {vision['layer_norm_eps']}"
        )
    return dict(
        hidden_size=vision["hidden_size"],
        num_hidden_layers=vision["num_hidden_layers"],
        num_attention_heads=vision["num_attention_heads"],
        intermediate_size=vision["intermediate_size"],
        hidden_act=vision.get("hidden_act", "gelu"),
        image_size=vision["image_size"],
        patch_size=vision["patch_size"],
        num_channels=vision.get("num_channels", 3),
        attention_bias=vision["qkv_bias"],
        use_qk_norm=vision["qk_normalization"],
        norm_type=vision["norm_type"],
        layer_norm_eps=vision["layer_norm_eps"],
        attention_dropout=vision.get("attention_dropout", 0.0),
        projection_dropout=vision.get("dropout", 0.0),
        initializer_range=vision.get("initializer_range", 0.02),
        layer_scale_init_value=vision.get("initializer_factor", 0.1),
        # InternViT has no final norm and no mask token (its CLS output is dropped: select strategy "default").
        use_mean_pooling=True,
        use_mask_token=False,
        use_absolute_position_embeddings=True,
    )


# ---------------------------------------------------------------- chat format


@dataclasses.dataclass(frozen=True)
class Conversation:
    """One of InternVL's conversation templates (its conversation.py), all SeparatorStyle.MPT:
    system role + system message + sep, then role + message + sep per turn, and the bare assistant
    role to prompt an answer. `sep` ends each turn; its token without the trailing newline (`end`) is
    what chat() stops on, so it becomes the converted tokenizer's eos."""

    system: str
    user: str
    assistant: str
    sep: str
    system_message: str  # written when a conversation gives none (InternVLChatModel.system_message)

    @property
    def end(self) -> str:
        return self.sep.strip()


# InternVL2's default system message; InternVL2.5 and 3 introduce themselves as 书生·万象.
_INTERNVL2_SYSTEM = "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。"
_INTERNVL2_5_SYSTEM = "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"
_CHATML = ("<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n")

# config.json's `template` → its conversation. InternVL2: Hermes-2 (1B), internlm2-chat (2B/8B),
# phi3-chat (4B), no newline after the turn end; InternVL2.5 and InternVL3 (every size): internvl2_5,
# ChatML with a newline after each <|im_end|>, as their training data was written.
TEMPLATES = {
    "Hermes-2": Conversation(*_CHATML, "<|im_end|>", _INTERNVL2_SYSTEM),
    "internlm2-chat": Conversation(*_CHATML, "<|im_end|>", _INTERNVL2_SYSTEM),
    "phi3-chat": Conversation("<|system|>\n", "<|user|>\n", "<|assistant|>\n", "<|end|>", _INTERNVL2_SYSTEM),
    "internvl2_5": Conversation(*_CHATML, "<|im_end|>\n", _INTERNVL2_5_SYSTEM),
}
_CHAT_BODY = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system_message = default_system -%}{%- set turns = messages -%}{%- endif -%}"
    "{{ system_role + system_message + sep }}"
    "{%- for message in turns -%}"
    "{%- if message['role'] == 'user' -%}{{ user_role + message['content'] + sep }}"
    "{%- elif message['role'] == 'assistant' -%}{{ assistant_role + message['content'] + sep }}"
    "{%- else -%}{{ raise_exception('unexpected chat role ' + message['role']) }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ assistant_role }}{%- endif -%}"
)


def chat_template(template: str, bos: bool, system_message: str | None = None) -> str:
    """Jinja chat template writing `template`'s conversation (optionally after the BOS the tokenizer adds).

    `system_message` replaces the template's default one (a checkpoint's config.json may set its own).
    """
    turns = TEMPLATES[template]
    values = dict(
        system_role=turns.system,
        user_role=turns.user,
        assistant_role=turns.assistant,
        sep=turns.sep,
        default_system=turns.system_message if system_message is None else system_message,
    )
    prelude = "".join(f"{{%- set {k} = {dumps(v, ensure_ascii=False)} -%}}" for k, v in values.items())
    return ("{{ bos_token }}" if bos else "") + prelude + _CHAT_BODY


# ---------------------------------------------------------------- weights

# A rule: original name pattern → native name template(s), and how to cut the tensor when several.
Split = Callable[[torch.Tensor], list[torch.Tensor]]
Rule = tuple[str, tuple[str, ...], Split | None]

_VL = r"vision_model\.encoder\.layers\.(\d+)\."
_V = r"model.vision_tower.encoder.layer.\1."


def _vision_qkv(tensor: torch.Tensor) -> list[torch.Tensor]:
    # InternAttention: qkv(x).reshape(B, N, 3, heads, head_dim) → rows are [q; k; v].
    return list(tensor.chunk(3, dim=0))


def _internlm2_wqkv(tensor: torch.Tensor, heads: int, kv_heads: int, head_dim: int) -> list[torch.Tensor]:
    # InternLM2Attention: wqkv(x) viewed as (kv_heads, groups + 2, head_dim): per kv head, its `groups`
    # query heads, then its key, then its value ('b q (h gs d) -> b q h gs d'). Query head h*groups+g
    # attends with kv head h, which is Llama's repeat_kv order.
    groups = heads // kv_heads
    packed = tensor.reshape(kv_heads, groups + 2, head_dim, *tensor.shape[1:])
    q = packed[:, :groups].reshape(heads * head_dim, *tensor.shape[1:])
    k = packed[:, -2].reshape(kv_heads * head_dim, *tensor.shape[1:])
    v = packed[:, -1].reshape(kv_heads * head_dim, *tensor.shape[1:])
    return [q, k, v]


VISION_RULES: list[Rule] = [
    (r"vision_model\.embeddings\.class_embedding", ("model.vision_tower.embeddings.cls_token",), None),
    (
        r"vision_model\.embeddings\.position_embedding",
        ("model.vision_tower.embeddings.position_embeddings",),
        None,
    ),
    (
        r"vision_model\.embeddings\.patch_embedding\.(weight|bias)",
        (r"model.vision_tower.embeddings.patch_embeddings.projection.\1",),
        None,
    ),
    (
        _VL + r"attn\.qkv\.(weight|bias)",
        tuple(_V + rf"attention.{p}_proj.\2" for p in "qkv"),
        _vision_qkv,
    ),
    (_VL + r"attn\.proj\.(weight|bias)", (_V + r"attention.projection_layer.\2",), None),
    (_VL + r"attn\.(q_norm|k_norm)\.weight", (_V + r"attention.\2.weight",), None),
    (_VL + r"norm1\.(weight|bias)", (_V + r"layernorm_before.\2",), None),
    (_VL + r"norm2\.(weight|bias)", (_V + r"layernorm_after.\2",), None),
    (_VL + r"ls1", (_V + "lambda_1",), None),
    (_VL + r"ls2", (_V + "lambda_2",), None),
    (_VL + r"mlp\.(fc1|fc2)\.(weight|bias)", (_V + r"mlp.\2.\3",), None),
    # mlp1 = Sequential(LayerNorm, Linear, GELU, Linear)
    (r"mlp1\.0\.(weight|bias)", (r"model.multi_modal_projector.layer_norm.\1",), None),
    (r"mlp1\.1\.(weight|bias)", (r"model.multi_modal_projector.linear_1.\1",), None),
    (r"mlp1\.3\.(weight|bias)", (r"model.multi_modal_projector.linear_2.\1",), None),
]

# Qwen2 and Phi-3 (fused qkv_proj, gate_up_proj) keep their module names; only the prefixes move.
SAME_NAMES_RULES: list[Rule] = [
    (r"language_model\.model\.(.+)", (r"model.language_model.\1",), None),
    (r"language_model\.lm_head\.weight", ("lm_head.weight",), None),
]

_LL = r"language_model\.model\.layers\.(\d+)\."
_L = r"model.language_model.layers.\1."


def internlm2_rules(heads: int, kv_heads: int, head_dim: int) -> list[Rule]:
    split = partial(_internlm2_wqkv, heads=heads, kv_heads=kv_heads, head_dim=head_dim)
    return [
        (
            r"language_model\.model\.tok_embeddings\.weight",
            ("model.language_model.embed_tokens.weight",),
            None,
        ),
        (r"language_model\.model\.norm\.weight", ("model.language_model.norm.weight",), None),
        (r"language_model\.output\.weight", ("lm_head.weight",), None),
        (
            _LL + r"attention\.wqkv\.(weight|bias)",
            tuple(_L + rf"self_attn.{p}_proj.\2" for p in "qkv"),
            split,
        ),
        (_LL + r"attention\.wo\.(weight|bias)", (_L + r"self_attn.o_proj.\2",), None),
        (_LL + r"feed_forward\.w1\.weight", (_L + "mlp.gate_proj.weight",), None),
        (_LL + r"feed_forward\.w3\.weight", (_L + "mlp.up_proj.weight",), None),
        (_LL + r"feed_forward\.w2\.weight", (_L + "mlp.down_proj.weight",), None),
        (_LL + r"attention_norm\.weight", (_L + "input_layernorm.weight",), None),
        (_LL + r"ffn_norm\.weight", (_L + "post_attention_layernorm.weight",), None),
    ]


class KeyMapper:
    """Maps one original tensor to its native name(s) and tensor(s); None when no rule matches."""

    def __init__(self, llm: dict) -> None:
        arch = llm["architectures"][0]
        if arch == "InternLM2ForCausalLM":
            heads = llm["num_attention_heads"]
            kv_heads = llm.get("num_key_value_heads") or heads
            text_rules = internlm2_rules(heads, kv_heads, llm["hidden_size"] // heads)
        else:
            text_rules = SAME_NAMES_RULES
        self.rules = [(re.compile(p), targets, split) for p, targets, split in VISION_RULES + text_rules]

    def __call__(self, key: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]] | None:
        for pattern, targets, split in self.rules:
            match = pattern.fullmatch(key)
            if match:
                pieces = split(tensor) if split else [tensor]
                return [(match.expand(t), p) for t, p in zip(targets, pieces, strict=True)]
        return None

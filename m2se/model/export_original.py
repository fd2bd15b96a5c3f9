"""A native InternVL written back in the ORIGINAL InternVL2 layout (``InternVLChatModel``): the exact
inverse of ``m2se.model.convert``.

The layout ms-swift 2.x, lmdeploy and InternVL's own scripts load: config.json with ``llm_config``,
``vision_config``, ``template`` and ``system_message``, an ``auto_map`` naming the original model code
on the hub by repo id (the code itself is never copied), original weight names with q/k/v fused as the
original modules split them, and the LLM's own tokenizer files. ``convert_checkpoint`` of the result
gives back the same weights, bit for bit, and the same config.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import InternVLConfig, PreTrainedConfig

from m2se.files import dumps, read_json_object
from m2se.model.convert import SOURCE_RECORD, ConversionError, ShardWriter, native_config
from m2se.model.convert_keys import TEMPLATES
from m2se.model.convert_tokenizer import IMAGE_TOKENS

# Native text model type → the original llm_config architecture (InternLM2 converts to Llama).
ARCHITECTURES = {"qwen2": "Qwen2ForCausalLM", "phi3": "Phi3ForCausalLM", "llama": "InternLM2ForCausalLM"}
# Whose remote code the config's auto_map names, by LLM and by whether the template is InternVL2.5's
# (older repos' conversation.py lacks it). A base converted from a hub download names its own repo.
HUB_CODE = {
    ("Qwen2ForCausalLM", False): "OpenGVLab/InternVL2-1B",
    ("Qwen2ForCausalLM", True): "OpenGVLab/InternVL2_5-1B",
    ("InternLM2ForCausalLM", False): "OpenGVLab/InternVL2-2B",
    ("InternLM2ForCausalLM", True): "OpenGVLab/InternVL2_5-2B",
    ("Phi3ForCausalLM", False): "OpenGVLab/InternVL2-4B",
    ("Phi3ForCausalLM", True): "OpenGVLab/InternVL2-4B",
}
AUTO_MAP = {
    "AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
    "AutoModel": "modeling_internvl_chat.InternVLChatModel",
    "AutoModelForCausalLM": "modeling_internvl_chat.InternVLChatModel",
}
TOKENIZER_FILES = (
    "tokenizer.model", "tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json",
    "special_tokens_map.json", "tokenizer_config.json",
)  # fmt: skip
_BASE_FIELDS = {f.name for f in dataclasses.fields(PreTrainedConfig)} | {"rope_parameters"}


class NoOriginalForm(ValueError):
    """The native model has something the original layout cannot hold."""


def original_state_dict(state: Mapping[str, torch.Tensor], config: InternVLConfig) -> dict[str, torch.Tensor]:
    """Native weights under their original names: vision q/k/v fused into ``attn.qkv`` (rows [q; k; v]),
    InternLM2's into ``wqkv`` packed per kv head; a tied ``lm_head`` left out. NoOriginalForm names a
    weight no rule places."""
    sd = dict(state)
    out: dict[str, torch.Tensor] = {}

    def move(native: str, original: str) -> None:
        if native in sd:
            out[original] = sd.pop(native)

    move("model.vision_tower.embeddings.cls_token", "vision_model.embeddings.class_embedding")
    move("model.vision_tower.embeddings.position_embeddings", "vision_model.embeddings.position_embedding")
    for p in ("weight", "bias"):
        move(
            f"model.vision_tower.embeddings.patch_embeddings.projection.{p}",
            f"vision_model.embeddings.patch_embedding.{p}",
        )
        for index, name in (("0", "layer_norm"), ("1", "linear_1"), ("3", "linear_2")):
            move(f"model.multi_modal_projector.{name}.{p}", f"mlp1.{index}.{p}")
    renames = {
        "attention.projection_layer": "attn.proj", "attention.q_norm": "attn.q_norm",
        "attention.k_norm": "attn.k_norm", "layernorm_before": "norm1", "layernorm_after": "norm2",
        "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
    }  # fmt: skip
    for i in range(config.vision_config.num_hidden_layers):
        n, o = f"model.vision_tower.encoder.layer.{i}.", f"vision_model.encoder.layers.{i}."
        for p in ("weight", "bias"):
            if n + f"attention.q_proj.{p}" in sd:  # InternAttention: qkv(x).reshape(B, N, 3, heads, d)
                out[o + f"attn.qkv.{p}"] = torch.cat([sd.pop(n + f"attention.{x}_proj.{p}") for x in "qkv"])
            for new, old in renames.items():
                move(n + f"{new}.{p}", o + f"{old}.{p}")
        move(n + "lambda_1", o + "ls1")
        move(n + "lambda_2", o + "ls2")
    if config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    if config.text_config.model_type == "llama":
        out |= _internlm2_weights(sd, config.text_config)
    else:  # Qwen2, Qwen2.5 and Phi-3 keep their names under language_model.model
        for key in [k for k in sd if k.startswith("model.language_model.")]:
            out["language_model.model." + key.removeprefix("model.language_model.")] = sd.pop(key)
        move("lm_head.weight", "language_model.lm_head.weight")
    if sd:
        raise NoOriginalForm(f"weight {sorted(sd)[0]} has no place in the original InternVL layout")
    return out


def _internlm2_weights(sd: dict[str, torch.Tensor], text) -> dict[str, torch.Tensor]:
    heads, kv_heads, head_dim = text.num_attention_heads, text.num_key_value_heads, text.head_dim
    groups = heads // kv_heads
    out = {
        "language_model.model.tok_embeddings.weight": sd.pop("model.language_model.embed_tokens.weight"),
        "language_model.model.norm.weight": sd.pop("model.language_model.norm.weight"),
    }
    if "lm_head.weight" in sd:
        out["language_model.output.weight"] = sd.pop("lm_head.weight")
    for i in range(text.num_hidden_layers):
        n, o = f"model.language_model.layers.{i}.", f"language_model.model.layers.{i}."
        for p in ("weight", "bias") if text.attention_bias else ("weight",):
            q, k, v = (sd.pop(n + f"self_attn.{x}_proj.{p}") for x in "qkv")
            # InternLM2 unpacks wqkv(x) as 'b q (h gs d) -> b q h gs d', gs = groups + 2: per kv head,
            # its query heads, its key, its value.
            rest = q.shape[1:]
            packed = torch.cat(
                [
                    q.reshape(kv_heads, groups, head_dim, *rest),
                    k.reshape(kv_heads, 1, head_dim, *rest),
                    v.reshape(kv_heads, 1, head_dim, *rest),
                ],
                dim=1,
            )
            out[o + f"attention.wqkv.{p}"] = packed.reshape(-1, *rest)
            out[o + f"attention.wo.{p}"] = sd.pop(n + f"self_attn.o_proj.{p}")
        for native, original in (("gate_proj", "w1"), ("up_proj", "w3"), ("down_proj", "w2")):
            out[o + f"feed_forward.{original}.weight"] = sd.pop(n + f"mlp.{native}.weight")
        out[o + "attention_norm.weight"] = sd.pop(n + "input_layernorm.weight")
        out[o + "ffn_norm.weight"] = sd.pop(n + "post_attention_layernorm.weight")
    return out


def llm_config(text: PreTrainedConfig) -> dict:
    """The original ``llm_config`` for a native text config (``convert_keys.text_config``'s inverse)."""
    arch = ARCHITECTURES.get(text.model_type)
    if arch is None:
        raise NoOriginalForm(
            f"a {text.model_type} language model has no original InternVL layout (known: qwen2, phi3, llama as InternLM2)"
        )
    declared = {f.name for f in dataclasses.fields(type(text))} - _BASE_FIELDS
    llm = {k: v for k, v in text.to_dict().items() if k in declared}
    rope = dict(text.rope_parameters or {})
    llm["rope_theta"], rope_type = rope.pop("rope_theta", 10000.0), rope.pop("rope_type", "default")
    if rope_type == "default":
        llm["rope_scaling"] = None
    elif rope_type in ("linear", "dynamic"):
        llm["rope_scaling"] = {"type": rope_type, "rope_type": rope_type, **rope}
    elif rope_type == "longrope" and arch == "Phi3ForCausalLM":
        # Phi-3's own code calls LongRoPE "su" and keeps the pretraining length outside rope_scaling.
        original = (
            rope.pop("original_max_position_embeddings", None) or llm["original_max_position_embeddings"]
        )
        llm["original_max_position_embeddings"] = original
        if rope.get("factor") == llm["max_position_embeddings"] / original:
            rope.pop("factor")  # what the original code computes itself
        llm["rope_scaling"] = {"type": "su", **rope}
    else:
        raise NoOriginalForm(f"text_config rope type {rope_type!r} has no original {arch} form")
    if arch == "InternLM2ForCausalLM":
        heads = llm["num_attention_heads"]
        if (
            llm.pop("head_dim") != llm["hidden_size"] // heads
            or llm.pop("mlp_bias")
            or llm.pop("pretraining_tp", 1) != 1
        ):
            raise NoOriginalForm(
                "a Llama language model with head_dim != hidden/heads, mlp_bias or pretraining_tp has no InternLM2 form"
            )
        llm["bias"] = llm.pop("attention_bias")
    return {"architectures": [arch], "model_type": arch.removesuffix("ForCausalLM").lower(), **llm}


def vision_config(vision) -> dict:
    """The original InternViT ``vision_config`` for a native one (``convert_keys.vision_config``'s inverse)."""
    (height, width), (patch, patch_w) = vision.image_size, vision.patch_size
    if height != width or patch != patch_w:
        raise NoOriginalForm("vision_config: InternViT needs square tiles and patches")
    return dict(
        architectures=["InternVisionModel"], model_type="intern_vit_6b",
        hidden_size=vision.hidden_size, num_hidden_layers=vision.num_hidden_layers,
        num_attention_heads=vision.num_attention_heads, intermediate_size=vision.intermediate_size,
        hidden_act=vision.hidden_act, image_size=height, patch_size=patch, num_channels=vision.num_channels,
        qkv_bias=vision.attention_bias, qk_normalization=vision.use_qk_norm, norm_type=vision.norm_type,
        layer_norm_eps=vision.layer_norm_eps, attention_dropout=vision.attention_dropout,
        dropout=vision.projection_dropout, initializer_range=vision.initializer_range,
        initializer_factor=vision.layer_scale_init_value, drop_path_rate=0.0, use_flash_attn=False,
    )  # fmt: skip


def chat_format(tokenizer, arch: str) -> str:
    """The InternVL template (``convert_keys.TEMPLATES``) that writes what ``tokenizer``'s chat template
    writes; Hermes-2 and internlm2-chat write the same and go by the LLM. NoOriginalForm when none does."""
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    bos = tokenizer.bos_token or ""
    order = ["phi3-chat", "internvl2_5"] + (
        ["internlm2-chat", "Hermes-2"] if "InternLM2" in arch else ["Hermes-2", "internlm2-chat"]
    )
    for name in order:
        t = TEMPLATES[name]
        turns = t.system + "S" + t.sep + t.user + "U" + t.sep + t.assistant + "A" + t.sep
        if rendered in (turns, bos + turns):
            return name
    raise NoOriginalForm(
        f"the tokenizer's chat template writes none of InternVL's conversations ({', '.join(TEMPLATES)})"
    )


def hub_repo(arch: str, template: str, source: str | None) -> str:
    found = re.search(r"models--([^/]+?)--([^/]+)", source or "")  # a Hugging Face cache snapshot
    return f"{found[1]}/{found[2]}" if found else HUB_CODE[(arch, template == "internvl2_5")]


def write_original(
    model,
    tokenizer,
    dst: Path,
    system_message: str | None,
    processor: Mapping,
    base: Path,
    max_shard_bytes: int,
) -> str:
    """Write ``model`` (a native ``InternVLForConditionalGeneration``, in the dtype to save) and its
    tokenizer into the existing folder ``dst`` in the original layout; returns the hub repo its
    ``auto_map`` names. The LLM's own tokenizer files are copied when ``base`` was converted from an
    original checkpoint still where ``m2se_converted.json`` says; else the fast tokenizer is written.
    ``processor``: ``max_tiles`` and ``use_thumbnail`` become ``max_dynamic_patch``/``use_thumbnail``.
    NoOriginalForm when the model has something the layout cannot hold."""
    config = model.config
    if config.model_type != "internvl":
        raise NoOriginalForm(
            f"a {config.model_type} model has no original InternVL layout (use format=native)"
        )
    missing = [t for t in IMAGE_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        raise NoOriginalForm(f"the tokenizer lacks {missing}")
    record = read_json_object(base / SOURCE_RECORD) if (base / SOURCE_RECORD).is_file() else {}
    llm = llm_config(config.text_config)
    arch = llm["architectures"][0]
    template = record.get("template") or chat_format(tokenizer, arch)
    repo = hub_repo(arch, template, record.get("source"))
    if not isinstance(config.vision_feature_layer, int):
        raise NoOriginalForm(f"vision_feature_layer {config.vision_feature_layer} is not one layer")
    dtype = str(model.dtype).removeprefix("torch.")
    vision = vision_config(config.vision_config)
    original = dict(
        architectures=["InternVLChatModel"], model_type="internvl_chat",
        auto_map={k: f"{repo}--{v}" for k, v in AUTO_MAP.items()},
        template=template, system_message=system_message,
        downsample_ratio=config.downsample_ratio, select_layer=config.vision_feature_layer, ps_version="v2",
        force_image_size=vision["image_size"], dynamic_image_size=True, min_dynamic_patch=1,
        max_dynamic_patch=processor.get("max_tiles", 12), use_thumbnail=processor.get("use_thumbnail", True),
        pad2square=False, use_backbone_lora=0, use_llm_lora=0, torch_dtype=dtype,
        llm_config={**llm, "torch_dtype": dtype}, vision_config={**vision, "torch_dtype": dtype},
    )  # fmt: skip
    # Read back as convert reads it: what the original loads as must be this very model (this catches
    # what InternVLChatModel fixes: the dropped CLS token, the GELU projector, InternViT's pooling).
    try:
        again = native_config(original, config.image_token_id, dst / "config.json")
    except ConversionError as err:
        raise NoOriginalForm(str(err)) from None
    differ = [k for k, v in _comparable(config).items() if _comparable(again).get(k) != v]
    if differ:
        raise NoOriginalForm(f"config {', '.join(differ)} would not survive the original layout")
    (dst / "config.json").write_text(dumps(original, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    writer = ShardWriter(dst, max_shard_bytes)
    for name, tensor in original_state_dict(model.state_dict(), config).items():
        writer.add(name, tensor)
    writer.finish()
    source = record.get("source")
    if isinstance(source, str) and (Path(source) / "tokenizer_config.json").is_file():
        _copy_tokenizer(Path(source), dst, repo)
    else:
        tokenizer.save_pretrained(dst)
        _portable_tokenizer_config(dst / "tokenizer_config.json")
    return repo


def _portable_tokenizer_config(path: Path) -> None:
    """tokenizer_config.json as the transformers 4.x that ms-swift 2.x, lmdeploy and InternVL's scripts
    run on reads it too: the fast tokenizer's class by its old name, extra specials as a list."""
    config = json.loads(path.read_text(encoding="utf-8"))
    for noise in ("backend", "is_local", "local_files_only"):  # transformers 5 bookkeeping
        config.pop(noise, None)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(config.get("extra_special_tokens"), list):
        config["additional_special_tokens"] = config.pop("extra_special_tokens")
    path.write_text(dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _comparable(config: InternVLConfig) -> dict:
    """The config's settings, leaving out what records rather than decides (dtype, names, versions)."""
    noise = {"dtype", "architectures", "_name_or_path", "transformers_version"}
    plain = {k: v for k, v in config.to_dict().items() if k not in noise}
    for sub in ("text_config", "vision_config"):
        plain[sub] = {k: v for k, v in plain[sub].items() if k not in noise}
    return plain


def _copy_tokenizer(source: Path, dst: Path, repo: str) -> None:
    """The LLM's tokenizer files as released; an ``auto_map`` naming local tokenizer code names it on
    ``repo`` instead (the code is not copied)."""
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, dst / name)
    config = json.loads((dst / "tokenizer_config.json").read_text(encoding="utf-8"))
    if isinstance(config.get("auto_map"), dict):

        def on_hub(name):  # "tokenization_internlm2.X" -> "OpenGVLab/InternVL2-2B--tokenization_internlm2.X"
            return f"{repo}--{name}" if isinstance(name, str) and "--" not in name else name

        auto_map = config["auto_map"].items()
        config["auto_map"] = {
            k: [on_hub(v) for v in v] if isinstance(v, list) else on_hub(v) for k, v in auto_map
        }
        (dst / "tokenizer_config.json").write_text(
            dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )

"""Tiny random InternVL2 checkpoints in the ORIGINAL (remote-code) layout, for conversion tests.

A native model is built first, with every norm gain, bias and layer scale randomised (PROTOCOL §6: a
forgotten mapping must show), then written out the way an OpenGVLab InternVL2 checkpoint is laid out:
config.json with `llm_config`/`vision_config`/`template`, original weight names, and the tokenizer
files of that backbone (Qwen2 vocab.json + merges.txt, InternLM2 sentencepiece tokenizer.model,
Phi-3 tokenizer.json). Fused weights are packed as the original forward code unpacks them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    InternVLConfig,
    InternVLForConditionalGeneration,
    LlamaConfig,
    Phi3Config,
    Qwen2Config,
)
from transformers.convert_slow_tokenizer import import_protobuf

from m2se.model.tiny import CORPUS

BACKBONES = ("qwen2", "internlm2", "phi3")
TEMPLATES = {"qwen2": "Hermes-2", "internlm2": "internlm2-chat", "phi3": "phi3-chat"}
ARCHITECTURES = {"qwen2": "Qwen2ForCausalLM", "internlm2": "InternLM2ForCausalLM", "phi3": "Phi3ForCausalLM"}
TILE, PATCH = 56, 14
IMAGE_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"]
# Leftovers every original sub-config carries (PretrainedConfig defaults of transformers 4.37).
CONFIG_NOISE = {"add_cross_attention": False, "do_sample": False, "max_length": 20, "use_bfloat16": True}
ROTARY_DIM = 8  # head_dim 16 for every tiny LLM below


# ---------------------------------------------------------------- tokenizers in the original formats


def _train_bpe(pre_tokenizer, vocab_size: int) -> dict:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizer
    alphabet = (
        pre_tokenizers.ByteLevel.alphabet() if isinstance(pre_tokenizer, pre_tokenizers.ByteLevel) else []
    )
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False)
    bpe.train_from_iterator(CORPUS.splitlines(), trainer)
    return json.loads(bpe.to_str())["model"]


def _added_decoder(tokens: dict[int, str]) -> dict:
    entry = dict(lstrip=False, normalized=False, rstrip=False, single_word=False, special=True)
    return {str(i): {"content": t, **entry} for i, t in sorted(tokens.items())}


def write_qwen2_tokenizer(out: Path) -> None:
    """InternVL2-1B style: byte-level vocab.json + merges.txt, specials only in tokenizer_config.json."""
    model = _train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), 500)
    vocab = model["vocab"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *IMAGE_TOKENS]
    added = {len(vocab) + i: t for i, t in enumerate(specials)}
    (out / "added_tokens.json").write_text(json.dumps({t: i for i, t in added.items()}))
    config = dict(
        tokenizer_class="Qwen2Tokenizer",
        added_tokens_decoder=_added_decoder(added),
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=8192,
    )
    (out / "tokenizer_config.json").write_text(json.dumps(config))


def write_sentencepiece_tokenizer(out: Path, add_dummy_prefix: bool = True) -> None:
    """InternVL2-2B/8B style: an InternLM2 sentencepiece BPE model whose last pieces are unused slots
    that tokenizer_config.json renames to <|im_end|>/<|im_start|>; image tokens come after it."""
    model = _train_bpe(pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"), 300)
    merged = list(dict.fromkeys("".join(m) for m in model["merges"]))
    chars = [p for p in model["vocab"] if len(p) == 1]
    pb = import_protobuf()
    proto = pb.ModelProto()
    proto.trainer_spec.model_type = 2  # BPE
    proto.trainer_spec.byte_fallback = True
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id, proto.trainer_spec.eos_id = 0, 1, 2
    proto.trainer_spec.unk_piece, proto.trainer_spec.bos_piece, proto.trainer_spec.eos_piece = (
        "<unk>",
        "<s>",
        "</s>",
    )
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = add_dummy_prefix
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    kinds = pb.ModelProto.SentencePiece
    pieces = [("<unk>", 0.0, kinds.UNKNOWN), ("<s>", 0.0, kinds.CONTROL), ("</s>", 0.0, kinds.CONTROL)]
    pieces += [(f"<0x{b:02X}>", 0.0, kinds.BYTE) for b in range(256)]
    # sentencepiece BPE scores: earlier merges score higher, single characters lowest.
    pieces += [(p, -float(i), kinds.NORMAL) for i, p in enumerate(merged + chars)]
    pieces += [("[UNUSED_TOKEN_1]", 0.0, kinds.USER_DEFINED), ("[UNUSED_TOKEN_2]", 0.0, kinds.USER_DEFINED)]
    for piece, score, kind in pieces:
        proto.pieces.add(piece=piece, score=score, type=kind)
    (out / "tokenizer.model").write_bytes(proto.SerializeToString())
    n = len(pieces)
    added = {0: "<unk>", 1: "<s>", 2: "</s>", n - 2: "<|im_end|>", n - 1: "<|im_start|>"}
    added |= {n + i: t for i, t in enumerate(IMAGE_TOKENS)}
    config = dict(
        tokenizer_class="InternLM2Tokenizer",
        auto_map={"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer", None]},
        added_tokens_decoder=_added_decoder(added),
        bos_token="<s>",
        eos_token="</s>",
        pad_token="</s>",
        unk_token="<unk>",
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=1000000000000000019884624838656,
    )
    (out / "tokenizer_config.json").write_text(json.dumps(config))


def write_phi3_tokenizer(out: Path) -> None:
    """InternVL2-4B style: a tokenizer.json with Phi-3's chat tokens, image tokens after them."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<unk>", "<s>", "</s>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS.splitlines(), trainer)
    chat = ["<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"]
    bpe.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in chat + IMAGE_TOKENS])
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.save(str(out / "tokenizer.json"))
    added = {bpe.token_to_id(t): t for t in specials + chat + IMAGE_TOKENS}
    config = dict(
        tokenizer_class="LlamaTokenizer",
        added_tokens_decoder=_added_decoder(added),
        bos_token="<s>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        add_bos_token=False,
        model_max_length=131072,
    )
    (out / "tokenizer_config.json").write_text(json.dumps(config))


TOKENIZER_WRITERS = {
    "qwen2": write_qwen2_tokenizer,
    "internlm2": write_sentencepiece_tokenizer,
    "phi3": write_phi3_tokenizer,
}


# ---------------------------------------------------------------- the model


def _text_config(backbone: str, vocab_size: int) -> dict:
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
    if backbone == "qwen2":
        return dict(common, architectures=["Qwen2ForCausalLM"], rope_theta=1e6, tie_word_embeddings=True)
    if backbone == "internlm2":
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


def _vision_config(backbone: str) -> dict:
    """InternViT-300M style (LayerNorm, qkv bias); the InternLM2 model gets InternViT-6B's RMSNorm + qk-norm."""
    six_b = backbone == "internlm2"
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
    backbone: str, vocab_size: int, image_token_id: int, seed: int = 0
) -> InternVLForConditionalGeneration:
    """A random native InternVL whose every weight is non-trivial (norm gains and layer scales near 1)."""
    text, vision = _text_config(backbone, vocab_size), _vision_config(backbone)
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


def original_state_dict(model: InternVLForConditionalGeneration, backbone: str) -> dict[str, torch.Tensor]:
    """The native weights under the original names, fused the way the original modules split them."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {
        "vision_model.embeddings.class_embedding": sd.pop("model.vision_tower.embeddings.cls_token"),
        "vision_model.embeddings.position_embedding": sd.pop(
            "model.vision_tower.embeddings.position_embeddings"
        ),
    }
    for p in ("weight", "bias"):
        out[f"vision_model.embeddings.patch_embedding.{p}"] = sd.pop(
            f"model.vision_tower.embeddings.patch_embeddings.projection.{p}"
        )
    vision = model.config.vision_config
    for i in range(vision.num_hidden_layers):
        n, o = f"model.vision_tower.encoder.layer.{i}.", f"vision_model.encoder.layers.{i}."
        # InternAttention: qkv(x).reshape(B, N, 3, heads, head_dim), so the rows are [q; k; v].
        for p in ("weight", "bias") if vision.attention_bias else ("weight",):
            out[o + f"attn.qkv.{p}"] = torch.cat([sd.pop(n + f"attention.{x}_proj.{p}") for x in "qkv"])
        renames = {"attention.projection_layer": "attn.proj", "layernorm_before": "norm1"}
        renames |= {"layernorm_after": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
        renames |= {"attention.q_norm": "attn.q_norm", "attention.k_norm": "attn.k_norm"}
        for new, old in renames.items():
            for p in ("weight", "bias"):
                if n + f"{new}.{p}" in sd:
                    out[o + f"{old}.{p}"] = sd.pop(n + f"{new}.{p}")
        out[o + "ls1"], out[o + "ls2"] = sd.pop(n + "lambda_1"), sd.pop(n + "lambda_2")
    for index, name in (("0", "layer_norm"), ("1", "linear_1"), ("3", "linear_2")):
        for p in ("weight", "bias"):
            out[f"mlp1.{index}.{p}"] = sd.pop(f"model.multi_modal_projector.{name}.{p}")
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight")
    if backbone != "internlm2":  # Qwen2 and Phi-3 keep their names under language_model.model
        for key in list(sd):
            out[
                key.replace("model.language_model.", "language_model.model.").replace(
                    "lm_head", "language_model.lm_head"
                )
            ] = sd.pop(key)
        return out
    text = model.config.text_config
    heads, kv_heads, head_dim = text.num_attention_heads, text.num_key_value_heads, text.head_dim
    groups = heads // kv_heads
    out["language_model.model.tok_embeddings.weight"] = sd.pop("model.language_model.embed_tokens.weight")
    out["language_model.model.norm.weight"] = sd.pop("model.language_model.norm.weight")
    out["language_model.output.weight"] = sd.pop("lm_head.weight")
    for i in range(text.num_hidden_layers):
        n, o = f"model.language_model.layers.{i}.", f"language_model.model.layers.{i}.attention."
        q, k, v = (sd.pop(n + f"self_attn.{x}_proj.weight") for x in "qkv")
        # InternLM2 unpacks wqkv(x) as 'b q (h gs d) -> b q h gs d' with gs = groups + 2: per kv head,
        # its query heads, its key, its value.
        packed = torch.cat(
            [
                q.view(kv_heads, groups, head_dim, -1),
                k.view(kv_heads, 1, head_dim, -1),
                v.view(kv_heads, 1, head_dim, -1),
            ],
            dim=1,
        )
        out[o + "wqkv.weight"] = packed.reshape(-1, q.shape[1])
        out[o + "wo.weight"] = sd.pop(n + "self_attn.o_proj.weight")
        f = f"language_model.model.layers.{i}.feed_forward."
        out[f + "w1.weight"] = sd.pop(n + "mlp.gate_proj.weight")
        out[f + "w3.weight"] = sd.pop(n + "mlp.up_proj.weight")
        out[f + "w2.weight"] = sd.pop(n + "mlp.down_proj.weight")
        out[f"language_model.model.layers.{i}.attention_norm.weight"] = sd.pop(n + "input_layernorm.weight")
        out[f"language_model.model.layers.{i}.ffn_norm.weight"] = sd.pop(
            n + "post_attention_layernorm.weight"
        )
    assert not sd, f"native weights left unpacked: {sorted(sd)}"
    return out


def original_config(backbone: str, vocab_size: int) -> dict:
    text, vision = _text_config(backbone, vocab_size), _vision_config(backbone)
    llm = dict(text, model_type=backbone, torch_dtype="bfloat16", attn_implementation="flash_attention_2")
    if backbone == "internlm2":
        llm["auto_map"] = {"AutoConfig": "configuration_internlm2.InternLM2Config"}
    return dict(
        architectures=["InternVLChatModel"],
        model_type="internvl_chat",
        template=TEMPLATES[backbone],
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
            **vision,
            architectures=["InternVisionModel"],
            model_type="intern_vit_6b",
            use_flash_attn=True,
            drop_path_rate=0.0,
        ),
    )


def write_original_checkpoint(
    out: Path, backbone: str, seed: int = 0, dtype: torch.dtype = torch.float32, shards: int = 1
) -> tuple[Path, InternVLForConditionalGeneration]:
    """Write a tiny original-layout InternVL2 checkpoint; returns (out, the native model it encodes)."""
    out.mkdir(parents=True)
    TOKENIZER_WRITERS[backbone](out)
    decoder = json.loads((out / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    ids = {entry["content"]: int(i) for i, entry in decoder.items()}
    vocab_size = max(ids.values()) + 1
    model = tiny_native(backbone, vocab_size, ids["<IMG_CONTEXT>"], seed).to(dtype)
    (out / "config.json").write_text(json.dumps(original_config(backbone, vocab_size), indent=2))
    weights = original_state_dict(model, backbone)
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

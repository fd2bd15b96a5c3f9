"""Tokenizer files in the formats original InternVL checkpoints ship, trained in code on the tiny corpus.

Qwen2/Qwen2.5 vocab.json + merges.txt (InternVL2-1B, InternVL2.5-1B/4B, InternVL3), an InternLM2
sentencepiece tokenizer.model (InternVL2-2B/8B, InternVL2.5-2B/8B), a Phi-3 tokenizer.json
(InternVL2-4B); each with its specials and the image tokens where the checkpoint has them.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers.convert_slow_tokenizer import import_protobuf

from m2se.model.tiny import CORPUS

IMAGE_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"]
QWEN2_5_PLAIN = ("<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>")


def _train_bpe(pre_tokenizer, vocab_size: int) -> dict:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizer
    alphabet = (
        pre_tokenizers.ByteLevel.alphabet() if isinstance(pre_tokenizer, pre_tokenizers.ByteLevel) else []
    )
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False)
    bpe.train_from_iterator(CORPUS.splitlines(), trainer)
    return json.loads(bpe.to_str())["model"]


def _added_decoder(tokens: dict[int, str], plain: tuple[str, ...] = ()) -> dict:
    """tokenizer_config.json's added_tokens_decoder; the `plain` ones are added but not special."""
    entry = dict(lstrip=False, normalized=False, rstrip=False, single_word=False)
    return {str(i): {"content": t, **entry, "special": t not in plain} for i, t in sorted(tokens.items())}


def write_qwen2_tokenizer(out: Path, qwen2_5: bool = False) -> None:
    """InternVL2-1B style: byte-level vocab.json + merges.txt, specials only in tokenizer_config.json.

    `qwen2_5`: InternVL2.5-1B/4B and InternVL3 style, Qwen2.5's extra tokens (some added but not
    special, as Qwen2.5 ships <tool_call> and the fill-in-the-middle ones) before the image tokens.
    """
    model = _train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), 500)
    vocab = model["vocab"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    chat = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    extra = (
        ["<|object_ref_start|>", "<|object_ref_end|>", "<|vision_pad|>", *QWEN2_5_PLAIN] if qwen2_5 else []
    )
    added = {len(vocab) + i: t for i, t in enumerate([*chat, *extra, *IMAGE_TOKENS])}
    (out / "added_tokens.json").write_text(json.dumps({t: i for i, t in added.items()}))
    config = dict(
        tokenizer_class="Qwen2Tokenizer",
        added_tokens_decoder=_added_decoder(added, QWEN2_5_PLAIN),
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=12288 if qwen2_5 else 8192,
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


# LLM family → the tokenizer files its original checkpoints ship.
TOKENIZER_WRITERS = {
    "qwen2": write_qwen2_tokenizer,
    "qwen2_5": partial(write_qwen2_tokenizer, qwen2_5=True),
    "internlm2": write_sentencepiece_tokenizer,
    "phi3": write_phi3_tokenizer,
}

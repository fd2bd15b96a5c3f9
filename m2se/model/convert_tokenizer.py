"""Tokenizers of original InternVL checkpoints → one fast tokenizer with the InternVL image tokens.

Qwen2 and Qwen2.5 (InternVL2-1B, InternVL2.5-1B/4B, InternVL3) ship byte-level BPE files; InternLM2 and
InternLM2.5 (InternVL2-2B/8B, InternVL2.5-2B/8B) and Phi-3 (InternVL2-4B) may ship only a sentencepiece
``tokenizer.model``, read here without the sentencepiece package (protobuf is needed). The chat
template written into the tokenizer reproduces the checkpoint's conversation format.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, normalizers
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer
from transformers.tokenization_utils_base import generate_merges

from m2se.model.convert_keys import TEMPLATES, chat_template

IMAGE_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>")


class ConversionError(Exception):
    """One line that names the file at fault."""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(f"{path}: not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConversionError(f"{path}: not valid JSON ({e})") from None


def _token_content(value) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def _sentencepiece_bpe(path: Path, renamed: dict[int, str], notes: list[str]) -> Tokenizer:
    """A sentencepiece BPE model as a fast tokenizer (needs protobuf, not sentencepiece).

    Follows the slow tokenizers InternVL2 used: byte fallback, the dummy-prefix `▁` on every text piece
    between added tokens when the model adds one, and ids whose piece tokenizer_config renames
    (InternLM2's `[UNUSED_TOKEN_n]` → `<|im_end|>`, ...) keep their id under the new name.
    """
    try:
        from transformers.convert_slow_tokenizer import import_protobuf

        proto = import_protobuf().ModelProto()
    except ImportError:
        raise ConversionError(f"{path}: reading a sentencepiece model needs the protobuf package") from None
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as e:  # protobuf's DecodeError
        raise ConversionError(f"{path}: not a sentencepiece model ({e})") from None
    spec, norm = proto.trainer_spec, proto.normalizer_spec
    if spec.model_type != 2:
        raise ConversionError(f"{path}: sentencepiece model type {spec.model_type} is not BPE (2)")
    pieces = [renamed.get(i, p.piece) for i, p in enumerate(proto.pieces)]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    normal = {pieces[i]: p.score for i, p in enumerate(proto.pieces) if p.type == 1 and i not in renamed}
    other = set(vocab) - set(normal)
    merges = generate_merges(vocab, normal, skip_tokens=other)  # sentencepiece merges by the result's score
    unk = pieces[spec.unk_id] if spec.unk_id >= 0 else None
    tokenizer = Tokenizer(BPE(vocab, merges, unk_token=unk, fuse_unk=True, byte_fallback=spec.byte_fallback))
    steps = [normalizers.Precompiled(norm.precompiled_charsmap)] if norm.precompiled_charsmap else []
    steps += [normalizers.Prepend("▁")] if norm.add_dummy_prefix else []
    steps += [normalizers.Replace(" ", "▁")] if norm.escape_whitespaces else []
    tokenizer.normalizer = normalizers.Sequence(steps)
    steps = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    tokenizer.decoder = decoders.Sequence(
        steps + ([decoders.Strip(" ", 1, 0)] if norm.add_dummy_prefix else [])
    )
    if norm.remove_extra_whitespaces:
        notes.append(
            f"{path.name}: remove_extra_whitespaces is not reproduced (runs of spaces tokenize as is)"
        )
    # Control (3) and user-defined (4) pieces match as whole tokens, as in sentencepiece.
    tokenizer.add_tokens(
        [
            AddedToken(pieces[i], special=p.type == 3, normalized=False)
            for i, p in enumerate(proto.pieces)
            if p.type in (3, 4) and i not in renamed
        ]
    )
    return tokenizer


def _byte_level_bpe(src: Path) -> Tokenizer:
    """Qwen2's vocab.json + merges.txt, with Qwen2's own normalizer and pre-tokenizer."""
    vocab = _read_json(src / "vocab.json")
    lines = (src / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    return Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, eos_token=None, pad_token=None
    )._tokenizer


def convert_tokenizer(
    src: Path, template: str, notes: list[str], system_message: str | None = None
) -> PreTrainedTokenizerFast:
    """The checkpoint's tokenizer as a fast one: its ids unchanged, image tokens present, eos = turn end,
    and a chat template for `template` (defaulting to `system_message` when given, else the template's)."""
    config_path = src / "tokenizer_config.json"
    config = _read_json(config_path) if config_path.exists() else {}
    specials = {**(_read_json(p) if (p := src / "special_tokens_map.json").exists() else {}), **config}
    added = {
        int(i): AddedToken(**{k: v for k, v in token.items() if k != "__type"})
        for i, token in config.get("added_tokens_decoder", {}).items()
    }
    if (p := src / "added_tokens.json").exists():
        for content, i in _read_json(p).items():
            added.setdefault(int(i), AddedToken(content, special=True, normalized=False))
    add_bos = config.get("add_bos_token")
    if (src / "tokenizer.json").exists():
        backend, where = Tokenizer.from_file(str(src / "tokenizer.json")), src / "tokenizer.json"
    elif (src / "vocab.json").exists() and (src / "merges.txt").exists():
        backend, where = _byte_level_bpe(src), src / "vocab.json"
    elif (src / "tokenizer.model").exists():
        where = src / "tokenizer.model"
        backend = _sentencepiece_bpe(where, {i: t.content for i, t in added.items()}, notes)
        add_bos = True if add_bos is None else add_bos  # InternLM2Tokenizer's and LlamaTokenizer's default
    else:
        raise ConversionError(
            f"{src}: no tokenizer (tokenizer.json, vocab.json + merges.txt or tokenizer.model)"
        )
    existing = backend.get_added_tokens_decoder()
    for i in sorted(added):
        token = added[i]
        if existing.get(i) is not None and existing[i].content == token.content:
            continue
        current = backend.id_to_token(i)
        if current is None and i != backend.get_vocab_size(with_added_tokens=True):
            raise ConversionError(
                f"{config_path}: added token {token.content!r} has id {i}, past the vocabulary end"
            )
        if current not in (None, token.content):
            raise ConversionError(
                f"{config_path}: id {i} is {token.content!r} there but {current!r} in {where.name}"
            )
        (backend.add_special_tokens if token.special else backend.add_tokens)([token])
    for token in IMAGE_TOKENS:
        if backend.token_to_id(token) is None:
            backend.add_special_tokens([AddedToken(token, special=True, normalized=False)])
            notes.append(f"tokenizer lacked {token}; added it as id {backend.token_to_id(token)}")
    end = TEMPLATES[template].end
    if backend.token_to_id(end) is None:
        raise ConversionError(f"{where}: no {end!r} token, which ends each turn of template {template}")
    known = {
        name: _token_content(specials.get(name))
        for name in ("bos_token", "eos_token", "unk_token", "pad_token")
    }
    known = {name: t for name, t in known.items() if t is not None and backend.token_to_id(t) is not None}
    # The LLM's own eos pads (it is no longer eos: the turn end is); unk if there is none.
    pad = known.pop("pad_token", None) or known.pop("eos_token", None) or known.get("unk_token")
    known.pop("eos_token", None)
    kwargs = dict(
        tokenizer_object=backend, eos_token=end, pad_token=pad, clean_up_tokenization_spaces=False, **known
    )
    if add_bos is not None:
        kwargs.update(add_bos_token=add_bos, add_eos_token=bool(config.get("add_eos_token", False)))
    max_length = config.get("model_max_length")
    if isinstance(max_length, int) and max_length < 10**9:  # 1e30 means "unset" in old tokenizer configs
        kwargs["model_max_length"] = max_length
    tokenizer = PreTrainedTokenizerFast(**kwargs)
    with_specials, plain = tokenizer("a").input_ids, tokenizer("a", add_special_tokens=False).input_ids
    adds_bos = tokenizer.bos_token_id is not None and with_specials == [tokenizer.bos_token_id, *plain]
    tokenizer.chat_template = chat_template(template, bos=adds_bos, system_message=system_message)
    return tokenizer

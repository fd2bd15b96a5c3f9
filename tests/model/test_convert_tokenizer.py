"""Sentencepiece tokenizers (InternLM2/InternLM2.5) convert without the sentencepiece package."""

import json
import re
from itertools import pairwise
from pathlib import Path

import pytest
from transformers.convert_slow_tokenizer import import_protobuf

from m2se.model.convert import convert_tokenizer
from tests.model.original_tokenizers import write_sentencepiece_tokenizer


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
        # internvl2_5 (InternVL2.5-2B/8B): a newline after every turn end
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nJoy.<|im_end|>\n",
        "  two  spaces, naïve 東京 😀\ttab",
    ]
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert ids == sentencepiece_reference(tmp_path / "tokenizer.model", added, text), text
        if not add_dummy_prefix:  # with it, each piece after an added token decodes with its ▁ as a space
            assert tokenizer.decode(ids) == text
    assert tokenizer("hi").input_ids[0] == tokenizer.bos_token_id == added["<s>"]  # add_bos_token

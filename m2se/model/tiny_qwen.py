"""A tiny random Qwen2.5-VL (or Qwen2-VL) with its own BPE tokenizer, built in code for tests and the demo.

    python -m m2se.model.tiny_qwen --out /tmp/tiny-qwen [--seed 0] [--variant qwen2_vl]

The directory loads offline with `AutoModelForImageTextToText.from_pretrained(dir)` (the Qwen2.5-VL or
Qwen2-VL class) and `AutoTokenizer.from_pretrained(dir)`. Its tokenizer speaks Qwen's ChatML (`<|im_start|>`, `<|im_end|>`
ends a turn and is eos, `<|endoftext|>` pads) with Qwen's vision tokens; its network has the tiny
InternVL's language-model sizes (64 wide, 2 layers, 4 heads) so the two families train side by side.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import (
    AutoModelForImageTextToText,
    GenerationConfig,
    PreTrainedConfig,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2VLConfig,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from m2se.model.tiny import CHATML_TOKENS, QWEN_PAD_TOKEN, new_folder, tiny_llm, train_tokenizer

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
VARIANTS = ("qwen2_5_vl", "qwen2_vl")

# Qwen2.5-VL's conversation for text content: ChatML, with Qwen's default system message when the
# conversation has none; the generation prompt is exactly the text before an answer.
QWEN_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_tokenizer(vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Byte-level BPE on the tiny InternVL's corpus with Qwen's special tokens; deterministic."""
    start, end = CHATML_TOKENS
    specials = [QWEN_PAD_TOKEN, start, end, *VISION_TOKENS]
    return train_tokenizer(specials, QWEN_PAD_TOKEN, end, QWEN_CHAT_TEMPLATE, vocab_size)


def tiny_config(tokenizer: PreTrainedTokenizerFast, variant: str = "qwen2_5_vl") -> PreTrainedConfig:
    """Vision 32 wide, 2 blocks (Qwen2.5-VL: the second full attention), 14-px patches merged 2×2, 2 frames
    deep; language model 64 wide, 2 layers, 4 heads (head 16: rotary sections 2/3/3 for time, height,
    width). ValueError for an unknown variant."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown tiny Qwen variant {variant!r} (known: {', '.join(VARIANTS)})")
    ids = tokenizer.convert_tokens_to_ids(list(VISION_TOKENS))
    patches = dict(patch_size=14, spatial_merge_size=2, temporal_patch_size=2, num_heads=2, depth=2)
    # The tiny InternVL's language model; head 16: rotary sections 2/3/3 for time, height, width.
    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}
    text = dict(**tiny_llm(tokenizer), rope_parameters=rope)
    tokens = dict(
        vision_start_token_id=ids[0], vision_end_token_id=ids[1], image_token_id=ids[2], video_token_id=ids[3]
    )
    if variant == "qwen2_vl":  # its vision config names the tower's width embed_dim, its output hidden_size
        vision = dict(embed_dim=32, hidden_size=64, mlp_ratio=2, **patches)
        return Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **tokens)
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        out_hidden_size=64,
        tokens_per_second=2,  # Qwen2.5-VL-3B/7B's
        window_size=56,  # px: windows of 2×2 merged tokens (Qwen2.5-VL's 112 px: 4×4)
        fullatt_block_indexes=[1],
        **patches,
    )
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **tokens)


def build_tiny_qwen(out_dir: Path, seed: int = 0, variant: str = "qwen2_5_vl") -> Path:
    """Write a random tiny Qwen2.5-VL (``variant="qwen2_vl"``: Qwen2-VL) with its generation config and
    tokenizer to out_dir. Same seed → bitwise-identical weights; the global torch RNG is left as it was."""
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    config = tiny_config(tokenizer, variant)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    # As the releases ship it: the image processor's settings (56-px pictures), for AutoProcessor users.
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56).save_pretrained(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=VARIANTS, default="qwen2_5_vl")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that has files")
    args = parser.parse_args(argv)
    new_folder(parser, args.out, args.overwrite)
    try:
        out = build_tiny_qwen(args.out, seed=args.seed, variant=args.variant)
    except OSError as err:  # an unwritable place
        parser.error(f"--out {args.out}: {err.strerror or err}")
    model = AutoModelForImageTextToText.from_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    name = type(model).__name__.removesuffix("ForConditionalGeneration")
    print(f"wrote {out}: tiny {name}, {n_params:,} parameters, vocab {model.config.text_config.vocab_size}")


if __name__ == "__main__":
    main()

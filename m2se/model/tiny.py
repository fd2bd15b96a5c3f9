"""A tiny random native InternVL with its own BPE tokenizer, built in code for tests and the demo.

    python -m m2se.model.tiny --out /tmp/tiny-internvl [--seed 0]
    python -m m2se.model.tiny --variant internvl3 --out /tmp/tiny-internvl3
    python -m m2se.model.tiny --audio --out /tmp/tiny-hubert     a tiny random HuBERT speech encoder

The directory loads offline with `InternVLForConditionalGeneration.from_pretrained(dir)` and
`AutoTokenizer.from_pretrained(dir)`. The default variant speaks InternVL2-4B's phi3-chat format;
`internvl3` stands for InternVL2.5/3 (a Qwen2.5-style LLM: dynamic rope, untied head, and the
internvl2_5 ChatML format the converter writes). The speech encoder loads with
`AutoModel.from_pretrained(dir)` and `AutoFeatureExtractor.from_pretrained(dir)`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    HubertConfig,
    HubertModel,
    InternVLConfig,
    InternVLForConditionalGeneration,
    PreTrainedTokenizerFast,
    Wav2Vec2FeatureExtractor,
)

from m2se.model.convert_keys import chat_template

IMAGE_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>")
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
PAD_TOKEN = "<pad>"
# The internvl3 variant: ChatML turns, and Qwen2.5's <|endoftext|> pads.
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")
QWEN_PAD_TOKEN = "<|endoftext|>"
VARIANTS = ("internvl2", "internvl3")

# InternVL2-4B's phi3-chat conversation, as EmoVerse trained it (docs/PROTOCOL.md §4). No BOS, no newline
# after <|end|>; the generation prompt is exactly the text before an answer.
PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

# Enough English for the EmoVerse prompts, and the demo's small talk and eri reasons
# (m2se.data.demo), to tokenize into whole words rather than bytes, which keeps the tiny model's
# sequences short. Byte-level BPE still encodes any text.
CORPUS = """\
The person says: 'I can't believe you did that!' <emotion> Please determine which emotion label in the video represents: anger, sadness, surprise, disgust, joy, neutral or fear.
The person says: "This is the best day of my life." <sentiment> Please determine which sentiment label in the video represents: positive or negative.
The person says: 'Oh my God, what happened?' <emotion> Please determine which emotion label in the video represents: anger, sad, surprise, disgust, happy, neutral or fear.
The person says: 'Leave me alone.' <reason> What is the emotional state of the person in the video? Please tell me the reason.
Detail the facial expressions used in the image. Eyes narrowing; Slightly puzzled; Lips pressed; Brows raised; Smiling widely.
Positive. Negative. Happy. Sadness. Surprise. Disgust. Anger. Fear. Neutral. Joy.
positive negative happy sad sadness surprise disgust anger angry fear neutral joy joyful
Below is a conversation containing multiple utterances from different speakers, \nalong with the corresponding emotion label for each utterance. \nYour task is to identify the indices of the candidate utterances that elicited the emotion in the target utterance.
Input conversation:1_neutral. Ross: Hey, how are you doing?\n2_joy. Rachel: I got the job!\n3_surprise. Monica: Really? That is great news.
Candidate utterances:1,2\nTarget utterance:3_surprise. Monica: Really? That is great news.
You need to return the answer as, for example, "3_surprise,1", \nwhich means that the emotion of surprise in the third sentence is related to the first sentence, \nand if the emotion is related to more than one sentence, separate the sentences with “;”.
The emotion-cause indices of the target utterance are: 3_surprise,2;11_fear,9;11_fear,11
Chandler Joey Phoebe Ross Rachel Monica said told asked looked smiled frowned shouted laughed cried.
Frame1: Frame2: Frame3: Frame4: Frame5: Frame6: Frame7: Frame8: Image-1: Image-2: 0 1 2 3 4 5 6 7 8 9 10 12
The speaker looks upset because her friend forgot the party, and her voice is loud and trembling.
You are an sentiment and emotion analysis expert. The video shows a man and a woman talking in a room.
Alex Sam Jordan Riley Casey: My cousin and the neighbour moved, carried, counted, checked, ordered, parked, fixed, found, sorted and labelled the boxes, a chair, the folder, two tickets, the car, some bread, the printer and a lamp on Tuesday, after lunch, this morning, last week, before the meeting, at noon and again. Our team, she, he, they.
The person is angry, disgusted, afraid, happy, calm, sad or surprised: a red square shakes, a green cross recoils to the left, a magenta diamond shrinks, a yellow circle bounces, a grey bar stays still, a blue falling triangle sinks, a cyan ring grows in the video.
"""


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown tiny variant {variant!r} (known: {', '.join(VARIANTS)})")


def build_tokenizer(vocab_size: int = 1024, variant: str = "internvl2") -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on CORPUS; deterministic (the trainer breaks ties by pair order).

    The turn end (<|end|>, or <|im_end|> for internvl3) is eos. Raises ValueError for an unknown variant.
    """
    _check_variant(variant)
    internvl3 = variant == "internvl3"
    pad, chat = (QWEN_PAD_TOKEN, CHATML_TOKENS) if internvl3 else (PAD_TOKEN, CHAT_TOKENS)
    template = chat_template("internvl2_5", bos=False) if internvl3 else PHI3_CHAT_TEMPLATE
    return train_tokenizer([pad, *chat, *IMAGE_TOKENS], pad, chat[-1], template, vocab_size)


def train_tokenizer(
    specials: list[str], pad: str, eos: str, template: str, vocab_size: int = 1024
) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on CORPUS with ``specials`` as its first ids (``pad`` and ``eos`` among
    them) and ``template`` as chat template; deterministic (the trainer breaks ties by pair order)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS.splitlines(), trainer)
    # Byte-level BPE encodes every byte, so there is no unknown token; no BOS either (phi3-chat
    # as EmoVerse used it starts with <|system|>, and Qwen's ChatML has none).
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=eos,
        pad_token=pad,
        extra_special_tokens=[t for t in specials if t not in (pad, eos)],
        model_max_length=4096,
    )
    tokenizer.chat_template = template
    return tokenizer


def tiny_llm(tokenizer: PreTrainedTokenizerFast) -> dict:
    """The tiny language model's sizes and ids, shared by every tiny family so that they train alike:
    64 wide, 2 layers, 4 heads."""
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        # One key/value head per query head: with 2 shared ones the tiny model learned the demo's
        # hardest skill, copying the target index out of an ECPE prompt, far later (docs/PROTOCOL.md §11).
        num_key_value_heads=4,
        intermediate_size=128,
        max_position_embeddings=4096,
        # With std 0.02 the tied embeddings give near-uniform logits and the demo's loss sits at
        # ≈ ln(vocab) while accuracy already rises (docs/PROTOCOL.md §11); 0.2 lets the loss move visibly.
        initializer_range=0.2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )


def tiny_config(
    tokenizer: PreTrainedTokenizerFast, tile_size: int = 56, variant: str = "internvl2"
) -> InternVLConfig:
    """Vision 32 / Qwen2 64 wide, 2 layers each; 56-px tiles → 4×4 patches → 4 tokens per tile.

    internvl3: the LLM config as InternVL2.5/3's Qwen2.5 writes it (rope theta 1e6 with dynamic NTK
    scaling ×2, every layer full attention, lm_head untied from the embeddings) and InternViT-300M's qkv
    bias in the vision tower.
    """
    _check_variant(variant)
    patch_size, downsample_ratio = 14, 0.5
    tokens_per_tile = int((tile_size // patch_size) ** 2 * downsample_ratio**2)
    vision = dict(
        model_type="internvl_vision",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=tile_size,
        patch_size=patch_size,
    )
    text = dict(model_type="qwen2", **tiny_llm(tokenizer), tie_word_embeddings=True)
    if variant == "internvl3":
        vision["attention_bias"] = True  # InternViT-300M-448px-V2_5's qkv bias
        text |= dict(
            rope_parameters={"rope_type": "dynamic", "rope_theta": 1e6, "factor": 2.0},
            layer_types=["full_attention"] * text["num_hidden_layers"],
            use_sliding_window=False,
            tie_word_embeddings=False,
        )
    return InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=tokens_per_tile,
        downsample_ratio=downsample_ratio,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=text["tie_word_embeddings"],
    )


def build_tiny_internvl(
    out_dir: Path, seed: int = 0, tile_size: int = 56, variant: str = "internvl2"
) -> Path:
    """Write a random tiny InternVL (weights, config, generation config, tokenizer) to out_dir.

    ``variant``: one of VARIANTS (see the module docstring). Same seed → bitwise-identical weights and
    the same tokenizer. The global torch RNG is left as it was. Returns out_dir.
    """
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(variant=variant)
    config = tiny_config(tokenizer, tile_size, variant)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = InternVLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_audio_encoder(out_dir: Path, seed: int = 0) -> Path:
    """Write a random tiny HuBERT (32 wide, 2 layers) and its 16 kHz feature extractor to out_dir.

    Its convolutions downsample 320×, as HuBERT's do: 50 frames per second of sound. Same seed →
    identical weights; the global torch RNG is left as it was. Returns out_dir.
    """
    out_dir = Path(out_dir)
    config = HubertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32, 32),
        conv_kernel=(10, 8, 8, 4),
        conv_stride=(5, 4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=8,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HubertModel(config).eval()
    model.save_pretrained(out_dir)
    Wav2Vec2FeatureExtractor(
        sampling_rate=16000, do_normalize=True, return_attention_mask=False
    ).save_pretrained(out_dir)
    return out_dir


def new_folder(parser: argparse.ArgumentParser, out: Path, overwrite: bool) -> None:
    """Exit with one line when ``out`` is a file, or a folder with files and not ``overwrite``: a builder
    never replaces what it was not told to (``make demo`` rebuilds its own tiny models with --overwrite)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not overwrite)):
        parser.error(f"--out {out}: exists and is not an empty folder (--overwrite replaces a folder)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=VARIANTS, default="internvl2", help="chat format and LLM config")
    parser.add_argument("--audio", action="store_true", help="the tiny speech encoder instead of InternVL")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that has files")
    args = parser.parse_args(argv)
    new_folder(parser, args.out, args.overwrite)
    if args.audio:
        out = build_tiny_audio_encoder(args.out, seed=args.seed)
        n_params = sum(p.numel() for p in HubertModel.from_pretrained(out).parameters())
        print(f"wrote {out}: tiny HuBERT speech encoder, {n_params:,} parameters, 16 kHz, 50 frames/s")
        return
    try:
        out = build_tiny_internvl(args.out, seed=args.seed, variant=args.variant)
    except OSError as err:  # an unwritable place
        parser.error(f"--out {args.out}: {err.strerror or err}")
    model = InternVLForConditionalGeneration.from_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    name = (
        "tiny InternVL"
        if args.variant == "internvl2"
        else "tiny InternVL3-like model (Qwen2.5-style LLM, internvl2_5 chat)"
    )
    print(
        f"wrote {out}: {name}, {n_params:,} parameters, vocab {model.config.text_config.vocab_size}, "
        f"{model.config.image_seq_length} tokens per {model.config.vision_config.image_size[0]}-px tile"
    )


if __name__ == "__main__":
    main()

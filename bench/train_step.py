"""Training-step speed and memory: forward + backward + AdamW on LoRA, a row per model and batch size.

    python bench/train_step.py [--model tiny internvl2_2b internvl2_4b PATH ...] [--batch 1 4] [--steps 10]
        [--warmup 3] [--frames 8] [--seq-text 256] [--checkpointing | --no-checkpointing] [--threads N]

Every model goes the way training takes it: a model folder, ``m2se.data.internvl.from_pretrained``,
``load_base`` with ``LoadSettings`` (bf16 and flash-attention 2 or sdpa on CUDA, fp32 on CPU) and
``add_lora`` with the training defaults. A step is what the trainer does per micro-batch:
autocast (bf16 on CUDA), forward, backward, gradient clipping at 1.0, AdamW.

- ``tiny``: the tiny random InternVL (56-px tiles, 4 tokens per tile), no gradient checkpointing,
  as ``experiment=demo`` trains it.
- ``internvl2_2b`` / ``internvl2_4b`` (CUDA only): InternVL2-2B/4B's shapes with random weights from
  the original config.json values (``native_config``) in a temporary folder, nothing downloaded; the
  tiny model's tokenizer stands in for theirs. Gradient checkpointing on, as training has it.
- ``PATH``: a native or original InternVL directory (``resolve_model_path``), checkpointing on.

A sample is one video of ``--frames`` frames (448-px random pixels, one tile each) and about
``--seq-text`` tokens of text (template, query, answer), encoded and padded by the project's
processor. The batch is encoded once and reused: data loading is not timed (bench/data.py is).

Model FLOPs per step are counted, not estimated: ``lightning``'s ``measure_flops`` (torch's
FlopCounterMode) runs forward + backward of the same LoRA model on the meta device, without
gradient-checkpoint recomputation; frozen weights get no weight gradients, so this is less than the
6 x params x tokens of full fine-tuning. MFU divides them by the GPU's dense bf16 peak (Lightning's
table; the H200's, 989 TFLOP/s, is added in ``report.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lightning.fabric.utilities.throughput import measure_flops
from report import PeakRss, count, peak_bf16_flops, table  # bench/ is on sys.path when run
from transformers import AutoConfig, InternVLConfig, InternVLForConditionalGeneration

from m2se.data import internvl
from m2se.data.processor import M2SEProcessor
from m2se.model.backbone import LoadSettings
from m2se.model.convert import native_config
from m2se.model.internvl import PARTS, load_base, resolve_model_path
from m2se.model.lora import LoraSettings, add_lora
from m2se.model.tiny import CORPUS, IMAGE_TOKENS, build_tiny_internvl, build_tokenizer

# The original InternVL2 config.json values that decide shapes (OpenGVLab/InternVL2-2B and -4B).
INTERNVIT_300M = dict(
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    image_size=448,
    patch_size=14,
    qkv_bias=True,
    qk_normalization=False,
    norm_type="layer_norm",
    layer_norm_eps=1e-6,
    hidden_act="gelu",
)
INTERNLM2_1_8B = dict(
    architectures=["InternLM2ForCausalLM"],
    hidden_size=2048,
    num_hidden_layers=24,
    num_attention_heads=16,
    num_key_value_heads=8,
    intermediate_size=8192,
    vocab_size=92553,
    bias=False,
    hidden_act="silu",
    max_position_embeddings=32768,
    rms_norm_eps=1e-5,
    rope_theta=1000000.0,
    rope_scaling={"type": "dynamic", "factor": 2.0},
    tie_word_embeddings=False,
)
# Phi-3-mini-128k's LongRoPE factors (48 per list) are left out: they change no shape and no FLOP.
PHI3_MINI = dict(
    architectures=["Phi3ForCausalLM"],
    hidden_size=3072,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    intermediate_size=8192,
    vocab_size=32020,
    hidden_act="silu",
    max_position_embeddings=131072,
    original_max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    sliding_window=262144,
    tie_word_embeddings=False,
)
INTERNVL2 = {"internvl2_2b": (INTERNLM2_1_8B, "internlm2-chat"), "internvl2_4b": (PHI3_MINI, "phi3-chat")}
# Answers of the six tasks' kinds, cycled over a batch so that samples differ in length.
ANSWERS = (
    "Positive.",
    "Happy.",
    "Eyes widening; Smiling widely",
    "The speaker looks upset because her friend forgot the party, and her voice is loud and trembling.",
    "3_surprise,2;3_surprise,3",
)


def internvl2_config(name: str, image_token_id: int) -> InternVLConfig:
    llm, template = INTERNVL2[name]
    original = dict(
        architectures=["InternVLChatModel"],
        vision_config=INTERNVIT_300M,
        llm_config=llm,
        downsample_ratio=0.5,
        select_layer=-1,
        template=template,
        ps_version="v2",
    )
    return native_config(original, image_token_id, Path(name))


def write_random_internvl2(name: str, out_dir: Path, device: torch.device) -> Path:
    """InternVL2 shapes with random bf16 weights and the tiny tokenizer, as a model folder load_base reads."""
    tokenizer = build_tokenizer()
    config = internvl2_config(name, tokenizer.convert_tokens_to_ids(IMAGE_TOKENS[2]))
    with torch.device(device):
        model = InternVLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    del model
    return out_dir


def make_batch(
    processor: M2SEProcessor, batch_size: int, frames: int, text_tokens: int, seed: int = 0
) -> dict:
    """A training batch: per sample one video of random pixels and about ``text_tokens`` non-visual tokens."""
    rng = np.random.default_rng(seed)
    filler = processor.tokenizer(CORPUS, add_special_tokens=False).input_ids * (text_tokens // 500 + 1)
    samples = []
    for i in range(batch_size):
        answer = ANSWERS[i % len(ANSWERS)]
        fixed = (
            processor.count_tokens("", answer, video_frames=[frames])
            - frames * processor.vision.tokens_per_tile
        )
        query = processor.tokenizer.decode(filler[: max(0, text_tokens - fixed)])
        video = rng.integers(0, 256, (frames, 448, 448, 3), dtype=np.uint8)
        samples.append(processor(query, answer, videos=[video]))
    return processor.collate(samples)


@contextlib.contextmanager
def _no_data_checks():
    # InternVL checks image tokens against features with .item(), which meta tensors cannot do.
    old = os.environ.get("TRANSFORMERS_DISABLE_TORCH_CHECK")
    os.environ["TRANSFORMERS_DISABLE_TORCH_CHECK"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TRANSFORMERS_DISABLE_TORCH_CHECK"]
        else:
            os.environ["TRANSFORMERS_DISABLE_TORCH_CHECK"] = old


def model_flops(config: InternVLConfig, lora: LoraSettings, batch: dict) -> tuple[int, int, int]:
    """(forward + backward FLOPs of one step, total params, trainable params) of the LoRA model, on meta."""
    config = copy.deepcopy(config)
    rope = config.text_config.rope_parameters
    if rope and rope.get("rope_type", "default") != "default":
        # Dynamic NTK scaling reads the positions' maximum; rope costs no FLOPs in the count anyway.
        config.text_config.rope_parameters = {"rope_type": "default", "rope_theta": rope["rope_theta"]}
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    model.requires_grad_(False)
    model = add_lora(model, lora, PARTS).train()
    inputs = {k: batch[k].to("meta") for k in ("input_ids", "pixel_values", "labels")}
    with _no_data_checks():
        # No attention_mask: building the padding mask reads data. Its FLOPs are the same.
        flops = measure_flops(model, lambda: model(**inputs).loss, lambda loss: loss)
    total = sum(p.numel() for p in model.parameters())
    return flops, total, sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass
class Result:
    model: str
    dtype: str
    attention: str
    checkpointing: bool
    batch: int
    tokens_per_sample: float
    visual_per_sample: float
    step_s: list[float]
    tokens: int
    peak_bytes: int
    trainable: int
    total: int
    flops: int
    peak_flops: float | None

    @property
    def mean_s(self) -> float:
        return statistics.fmean(self.step_s)


def train_steps(model: torch.nn.Module, batch: dict, warmup: int, steps: int) -> list[float]:
    """Seconds per step of the ``steps`` after ``warmup``, each as the trainer runs a micro-batch."""
    device = batch["input_ids"].device
    cuda = device.type == "cuda"
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def bench(
    name: str, folder: Path, args, batch_size: int, device: torch.device, checkpointing: bool
) -> Result:
    processor = internvl.from_pretrained(folder, max_length=None)
    batch = make_batch(processor, batch_size, args.frames, args.seq_text)
    lora = LoraSettings()
    flops, total, trainable = model_flops(AutoConfig.from_pretrained(folder), lora, batch)
    batch = {k: v.to(device) for k, v in batch.items()}
    cuda = device.type == "cuda"
    settings = LoadSettings(
        gradient_checkpointing=checkpointing, extra={"device_map": "cuda"} if cuda else {}
    )
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with contextlib.nullcontext() if cuda else PeakRss() as rss:
        model = add_lora(load_base(folder, settings), lora, PARTS).train()
        times = train_steps(model, batch, args.warmup, args.steps)
    peak = torch.cuda.max_memory_allocated(device) if cuda else rss.delta
    visual = int((batch["input_ids"] == processor.vision.image_token_id).sum())
    tokens = int(batch["attention_mask"].sum())
    result = Result(
        model=name,
        dtype=str(settings.torch_dtype()).removeprefix("torch."),
        attention=settings.attention(),
        checkpointing=checkpointing,
        batch=batch_size,
        tokens_per_sample=tokens / batch_size,
        visual_per_sample=visual / batch_size,
        step_s=times,
        tokens=tokens,
        peak_bytes=peak,
        trainable=trainable,
        total=total,
        flops=flops,
        peak_flops=peak_bf16_flops(device) if cuda else None,
    )
    del model, batch
    gc.collect()
    return result


def skipped(name: str, args) -> str:
    """What a GPU configuration would run, from a meta-device model: no CUDA needed."""
    tokenizer = build_tokenizer()
    config = internvl2_config(name, tokenizer.convert_tokens_to_ids(IMAGE_TOKENS[2]))
    ids = tuple(tokenizer.convert_tokens_to_ids([IMAGE_TOKENS[0], IMAGE_TOKENS[2], IMAGE_TOKENS[1]]))
    vision = internvl.InternVLVision(tile_size=448, tokens_per_tile=config.image_seq_length, image_ids=ids)
    processor = M2SEProcessor(tokenizer, vision, max_length=None)
    batch = make_batch(processor, args.batch[0], args.frames, args.seq_text)
    flops, total, trainable = model_flops(config, LoraSettings(), batch)
    return (
        f"{name}: skipped: no CUDA device ({count(total)} params, {count(trainable)} LoRA; "
        f"{flops / 1e12:.1f} TFLOP per step at batch {args.batch[0]})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    models = "tiny, internvl2_2b, internvl2_4b or a path"
    parser.add_argument("--model", nargs="+", default=["tiny", *INTERNVL2], help=models)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4], help="micro-batch sizes")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--frames", type=int, default=8, help="video frames per sample (one tile each)")
    parser.add_argument("--seq-text", type=int, default=256, help="non-visual tokens per sample")
    checkpointing = "gradient checkpointing (default: off for tiny, on otherwise)"
    parser.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, help=checkpointing)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(
        f"train step on {where}; torch {torch.__version__}; {args.warmup} warmup + {args.steps} timed steps"
    )
    print(
        "FLOPs: measure_flops (FlopCounterMode) of forward + backward on a meta-device copy, no recompute; "
        "MFU against the dense bf16 peak"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="m2se-bench-") as tmp:
        for name in args.model:
            if name in INTERNVL2 and device.type != "cuda":
                print(skipped(name, args), flush=True)
                continue
            if name == "tiny":
                folder = build_tiny_internvl(Path(tmp) / "tiny")
            elif name in INTERNVL2:
                folder = write_random_internvl2(name, Path(tmp) / name, device)
            else:
                cache = Path(os.environ.get("M2SE_CACHE", "~/.cache/m2se")).expanduser() / "converted"
                folder = resolve_model_path(name, cache)  # as conf/model/*.yaml: a folder or cached hub id
            checkpointing = args.checkpointing if args.checkpointing is not None else name != "tiny"
            for batch_size in args.batch:
                results.append(bench(name, folder, args, batch_size, device, checkpointing))
                print(f"  {name} batch {batch_size}: {results[-1].mean_s * 1e3:.1f} ms/step", flush=True)
    if results:
        memory = "max allocated" if device.type == "cuda" else "RSS above start"
        print(f"\npeak mem: {memory}, from loading through the last step\n\n{table(results)}")


if __name__ == "__main__":
    main()

"""What hearing adds to a training step: the same batch with and without its audio, on the tiny model.

    python bench/audio_step.py [--batch 1 4] [--seconds 5] [--frames 4] [--tokens 8] [--steps 10]
                               [--warmup 3] [--encoder PATH] [--threads N]

A step is what ``experiment=demo_audio`` trains: ``M2SEModule`` forward (the speech encoder hears
each clip, frozen; the projector maps its pooled frames into the prompt), backward, gradient clipping
at 1.0, AdamW on the LoRA and the projector. Each sample is a clip of ``--frames`` 56-px frames and
``--seconds`` of random sound at 16 kHz, encoded by the project's processor; "without" is the same
samples encoded without the sound (no placeholder, no encoder). ``--encoder`` times a real speech
encoder folder instead of the tiny random HuBERT. CPU fp32, or CUDA with bf16 autocast.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from m2se.data import internvl
from m2se.data.processor import M2SEProcessor
from m2se.model.internvl import InternVL
from m2se.model.module import M2SEModule
from m2se.model.tiny import build_tiny_audio_encoder, build_tiny_internvl

QUERY = "The person in video says: I can't believe you did that!  [emotion] Which emotion label fits?"


def batch_of(processor: M2SEProcessor, size: int, frames: int, seconds: float, audio: bool) -> dict:
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(size):
        video = rng.integers(0, 256, (frames, 56, 56, 3), dtype=np.uint8)
        sound = (0.1 * rng.standard_normal(int(seconds * processor.sampling_rate))).astype(np.float32)
        samples.append(processor(QUERY, "happy", videos=[video], audio=sound if audio else None))
    return processor.collate(samples)


def to(batch: dict, device: torch.device) -> dict:
    def move(value):
        if isinstance(value, torch.Tensor):
            return value.to(device)
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        return value

    return {k: move(v) for k, v in batch.items()}


def step_seconds(module: M2SEModule, batch: dict, warmup: int, steps: int) -> list[float]:
    device = batch["input_ids"].device
    cuda = device.type == "cuda"
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = module(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=5.0, help="sound per clip")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=8, help="audio tokens per clip (model.audio.tokens)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--encoder", type=Path, default=None, help="a speech encoder folder (default: tiny HuBERT)"
    )
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_internvl(Path(tmp) / "tiny-internvl")
        encoder = args.encoder or build_tiny_audio_encoder(Path(tmp) / "tiny-hubert")
        audio = {"encoder": str(encoder), "tokens": args.tokens, "max_seconds": args.seconds}
        processor = internvl.from_pretrained(model_dir, audio=audio)
        torch.manual_seed(0)
        module = M2SEModule(InternVL(str(model_dir)), processor).to(device).train()
        name = "tiny HuBERT" if args.encoder is None else str(args.encoder)
        print(
            f"tiny InternVL + {name} on {device} ({torch.get_num_threads()} threads); {args.frames} frames and "
            f"{args.seconds:g} s of sound per sample, {args.tokens} audio tokens; mean ± sd of {args.steps} steps"
        )
        print("| batch | without audio (ms) | with audio (ms) | added (ms) | added |")
        print("|---|---|---|---|---|")
        for size in args.batch:
            plain = step_seconds(
                module,
                to(batch_of(processor, size, args.frames, args.seconds, False), device),
                args.warmup,
                args.steps,
            )
            heard = step_seconds(
                module,
                to(batch_of(processor, size, args.frames, args.seconds, True), device),
                args.warmup,
                args.steps,
            )
            a, b = statistics.fmean(plain) * 1e3, statistics.fmean(heard) * 1e3
            print(
                f"| {size} | {a:.1f} ± {statistics.stdev(plain) * 1e3:.1f} | {b:.1f} ± "
                f"{statistics.stdev(heard) * 1e3:.1f} | {b - a:+.1f} | {100 * (b - a) / a:+.0f} % |"
            )


if __name__ == "__main__":
    main()

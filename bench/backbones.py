"""Training-step time of backbone families side by side, on the same samples: one row per model config.

    python bench/backbones.py [--model tiny tiny_qwen] [--batch 4] [--steps 20] [--frames 8] [--threads N]

Each ``--model`` is a model config name (conf/model/NAME.yaml): its ``backbone`` and ``processor`` are
built as train.py builds them, the tiny ones first written into a temporary folder by their ``build``.
Every family encodes the same samples (a clip of ``--frames`` random frames at its frame size and an
ERC query and answer) with the training defaults (LoRA r=8 on the language model and projector, fp32 on
CPU, bf16 autocast on CUDA, no gradient checkpointing); a step is forward, backward, clipping and AdamW
through ``M2SEModule``, as the trainer runs it. Visual tokens per sample are printed beside the time:
families write the same frames as different numbers of tokens.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from report import PeakRss  # bench/ is on sys.path when run

from m2se.data.vision import count_visual
from m2se.model.module import M2SEModule
from m2se.tasks import TASKS

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"


def family(name: str, folder: Path):
    """(backbone, processor) of conf/model/NAME.yaml with its model at ``folder`` (built if it has a build)."""
    node = OmegaConf.load(CONF / f"{name}.yaml")
    for parent in node.get("defaults", []):
        if isinstance(parent, str) and parent != "_self_":  # tiny_qwen extends qwen2_5_vl_3b
            node = OmegaConf.merge(OmegaConf.load(CONF / f"{parent}.yaml"), node)
    cfg = OmegaConf.create({"model": OmegaConf.merge(node, {"path": str(folder)})}).model
    if "build" in cfg:
        instantiate(cfg.build)
    backbone = instantiate(cfg.backbone).resolved()
    return backbone, instantiate(cfg.processor, _partial_=True)(max_length=None)


def step_times(module: M2SEModule, batch: dict, warmup: int, steps: int) -> list[float]:
    device = batch["input_ids"].device
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = module(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", default=["tiny", "tiny_qwen"], help="model config names")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"train step, batch {args.batch}, {args.frames} frames, {args.warmup} warmup + {args.steps} timed steps"
    )
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 256, (args.frames, 448, 448, 3), dtype=np.uint8) for _ in range(args.batch)]
    query, answer = TASKS["erc"].query("Oh my God, what happened?"), TASKS["erc"].format("Surprise")
    with tempfile.TemporaryDirectory(prefix="m2se-bench-") as tmp:
        for name in args.model:
            backbone, processor = family(name, Path(tmp) / name)
            size = processor.tile_size
            frames = [np.stack([np.asarray(f[:size, :size]) for f in clip]) for clip in clips]
            batch = processor.collate([processor(query, answer, videos=[clip]) for clip in frames])
            visual = count_visual(batch["input_ids"], processor.vision) / args.batch
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            with PeakRss() as rss:
                module = M2SEModule(backbone, processor).to(device).train()
                times = step_times(module, batch, args.warmup, args.steps)
            trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            print(
                f"{name:>10}: {statistics.median(times) * 1e3:7.1f} ms/step (median), "
                f"{visual:.0f} visual + {batch['input_ids'].shape[1] - visual:.0f} other tokens per sample "
                f"(padded), {trainable:,} LoRA params, peak RSS +{rss.delta / 2**20:.0f} MiB"
            )


if __name__ == "__main__":
    main()

"""Training-step time of backbone families side by side, on the same samples: one row per model config.

    python bench/backbones.py [--model tiny tiny_qwen] [--batch 4] [--steps 20] [--frames 8] [--threads N]
    python bench/backbones.py --model internvl2_4b qwen2_5_vl_3b --batch 1 --frames 8     (CUDA)

Each ``--model`` is a model config name (conf/model/NAME.yaml): its ``backbone`` and ``processor`` are
built as train.py builds them, the tiny ones first written into a temporary folder by their ``build``.
``internvl2_4b`` and ``qwen2_5_vl_3b`` are the published shapes with random bf16 weights (nothing
downloaded; the tiny tokenizers stand in, the vocabularies keep their published sizes), on CUDA only:
without it they print their parameter counts and are skipped. Peak memory is CUDA's max allocated, or
the process's resident memory above its start on CPU.
Every family encodes the same samples (a clip of ``--frames`` random frames at its frame size and an
ERC query and answer) with the training defaults (LoRA r=8 on the language model and projector, fp32 on
CPU, bf16 autocast on CUDA, no gradient checkpointing); a step is forward, backward, clipping and AdamW
through ``M2SEModule``, as the trainer runs it. Visual tokens per sample are printed beside the time:
families write the same frames as different numbers of tokens.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from audio_step import step_seconds  # bench/ is on sys.path when run
from hydra.utils import instantiate
from omegaconf import OmegaConf
from report import PeakRss
from train_step import internvl2_config, write_random_internvl2  # bench/ is on sys.path when run
from transformers import AutoModelForImageTextToText, Qwen2_5_VLConfig

from m2se.data.vision import count_visual
from m2se.model.module import M2SEModule
from m2se.model.tiny_qwen import VISION_TOKENS
from m2se.model.tiny_qwen import build_tokenizer as qwen_tokenizer
from m2se.tasks import TASKS

# Qwen/Qwen2.5-VL-3B-Instruct's config.json values that decide shapes.
QWEN2_5_VL_3B_TEXT = dict(
    vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
    num_key_value_heads=2, max_position_embeddings=128000, rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
)  # fmt: skip
QWEN2_5_VL_3B_VISION = dict(
    depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048, patch_size=14,
    spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=112,
    fullatt_block_indexes=[7, 15, 23, 31],
)  # fmt: skip


def qwen2_5_vl_3b_config(tokenizer) -> Qwen2_5_VLConfig:
    ids = tokenizer.convert_tokens_to_ids(list(VISION_TOKENS))
    return Qwen2_5_VLConfig(
        text_config=QWEN2_5_VL_3B_TEXT, vision_config=QWEN2_5_VL_3B_VISION, tie_word_embeddings=True,
        vision_start_token_id=ids[0], vision_end_token_id=ids[1], image_token_id=ids[2], video_token_id=ids[3],
    )  # fmt: skip


def write_random_qwen2_5_vl_3b(out_dir: Path, device: torch.device) -> Path:
    """Qwen2.5-VL-3B's shapes with random bf16 weights and the tiny Qwen tokenizer, as a model folder."""
    tokenizer = qwen_tokenizer()
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(qwen2_5_vl_3b_config(tokenizer), dtype=torch.bfloat16)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


RANDOM = {
    "internvl2_4b": lambda out, device: write_random_internvl2("internvl2_4b", out, device),
    "qwen2_5_vl_3b": write_random_qwen2_5_vl_3b,
}

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
    elif name in RANDOM:
        RANDOM[name](folder, torch.device("cuda"))
    backbone = instantiate(cfg.backbone).resolved()
    return backbone, instantiate(cfg.processor, _partial_=True)(max_length=None)


def _params(name: str) -> int:
    """The random model's parameter count, from a meta-device copy (no memory, no CUDA)."""
    config = qwen2_5_vl_3b_config(qwen_tokenizer()) if name == "qwen2_5_vl_3b" else internvl2_config(name, 0)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", default=["tiny", "tiny_qwen"], help="model config names")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    unknown = [name for name in args.model if not (CONF / f"{name}.yaml").is_file()]
    if unknown:
        parser.error(f"--model {' '.join(unknown)}: no such model config in conf/model/")
    if min(args.batch, args.frames, args.steps) < 1 or args.warmup < 0:
        parser.error("--batch, --frames and --steps must be >= 1, --warmup >= 0")
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
            if name in RANDOM and device.type != "cuda":
                print(f"{name:>14}: skipped: no CUDA device ({_params(name) / 1e9:.2f} B params)")
                continue
            backbone, processor = family(name, Path(tmp) / name)
            size = processor.tile_size
            frames = [np.stack([np.asarray(f[:size, :size]) for f in clip]) for clip in clips]
            batch = processor.collate([processor(query, answer, videos=[clip]) for clip in frames])
            visual = count_visual(batch["input_ids"], processor.vision) / args.batch
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            cuda = device.type == "cuda"
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            load = {"extra": {"device_map": "cuda"}} if cuda else None
            with PeakRss() as rss:
                module = M2SEModule(backbone, processor, load=load).to(device).train()
                times = step_seconds(module, batch, args.warmup, args.steps)
            peak = torch.cuda.max_memory_allocated(device) if cuda else rss.delta
            trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            print(
                f"{name:>14}: {statistics.median(times) * 1e3:7.1f} ms/step (median), "
                f"{visual:.0f} visual + {batch['input_ids'].shape[1] - visual:.0f} other tokens per sample "
                f"(padded), {trainable:,} LoRA params, peak {'allocated' if cuda else 'RSS +'}"
                f"{peak / 2**20:.0f} MiB",
                flush=True,
            )
            del module, batch
            gc.collect()


if __name__ == "__main__":
    main()

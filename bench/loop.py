"""The training loop's overhead: train.py's path against a bare PyTorch loop doing the same steps.

    python bench/loop.py [--steps 60] [--warmup 5] [--workers 2] [--batch 8] [--mixture second] [--threads N]
                         [--repeats 2]

On the tiny model and the demo dataset (built in a temporary folder), both at the demo's settings
(``experiment=demo``):
- train.py's path: the Hydra config, ``build_callbacks``/``build_data``/``build_module``/
  ``build_trainer`` as ``train.py`` calls them (DataModule with ``--workers`` DataLoader workers,
  decoding media every step, Lightning's loop, csv logging, the default callbacks), validation and
  checkpointing off; a callback times each step from batch start to batch end and the gap before it
  (fetching the batch, moving it, Lightning's hooks: the data wait);
- bare: the same module, optimizer and schedule, forward + backward + gradient clipping at 1.0 +
  AdamW over the same number of batches collated beforehand, nothing else.
Both skip ``--warmup`` steps, then time ``--steps``; the two loops take turns ``--repeats`` times and
each keeps its best run (a 2-core machine's speed drifts between runs). Prints each one's samples/s,
the ratio, and the data wait's share of the real loop's best run. ``--frame-cache`` builds a frame
cache of the demo's media first and both loops read it. On 2 CPU cores the workers' decoding takes
CPU time the step then lacks, which the bare loop never pays: the data wait stays small while the
ratio drops. ``--threads N`` holds both loops' steps to N torch threads (default: torch's, one per
core); ``--threads 1`` on 2 cores leaves the workers a core of their own, as a GPU step does, and so
measures the loader and Lightning's loop alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from m2se.cli import build_data, build_module
from m2se.data.cache import build_cache
from m2se.data.demo import write_demo_dataset
from m2se.model.tiny import build_tiny_internvl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train import build_callbacks, build_trainer  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"


class StepTimer(L.Callback):
    """Per step after ``warmup``: seconds from batch start to batch end, and the gap before the start."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.steps, self.waits, self._end = warmup, [], [], None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._start = time.perf_counter()
        if self._end is not None and batch_idx > self.warmup:
            self.waits.append(self._start - self._end)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._end = time.perf_counter()
        if batch_idx >= self.warmup:
            self.steps.append(self._end - self._start)


def config(tmp: Path, args, steps: int):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                "experiment=demo",
                f"model.path={tmp / 'tiny'}",
                f"data.data_dir={tmp / 'demo'}",
                f"output_dir={tmp / 'run'}",
                f"data.mixture={args.mixture}",
                f"data.batch_size={args.batch}",
                f"data.num_workers={args.workers}",
                "data.val_fraction=0",
                "trainer.max_epochs=null",
                f"trainer.max_steps={steps}",
                "trainer.limit_val_batches=0",
                "+trainer.enable_progress_bar=false",
                "prepare_demo=false",
                "callbacks.adapter=null",  # no adapter folder to write
                *args.overrides,
            ],
        )


def real_loop(cfg, args) -> tuple[float, float]:
    """(samples/s, data wait's share of the timed steps' wall time) through train.py's builders."""
    L.seed_everything(cfg.seed, workers=True)
    timer = StepTimer(args.warmup)
    callbacks = [*build_callbacks(cfg), timer]
    backbone, datamodule = build_data(cfg)
    datamodule.setup("fit")
    module = build_module(cfg, backbone, datamodule)
    trainer = build_trainer(cfg, has_validation=False, callbacks=callbacks)
    trainer.fit(module, datamodule=datamodule)
    busy, waiting = sum(timer.steps), sum(timer.waits)
    return len(timer.steps) * args.batch / (busy + waiting), waiting / (busy + waiting)


def bare_loop(cfg, args) -> float:
    """Samples/s of forward, backward, clipping and AdamW on batches collated beforehand."""
    L.seed_everything(cfg.seed, workers=True)
    backbone, datamodule = build_data(cfg)
    datamodule.setup("fit")
    module = build_module(cfg, backbone, datamodule).train()
    batches = list(islice(datamodule.train_dataloader(), args.warmup + args.steps))
    module.schedule_steps = len(batches)  # what the trainer would estimate
    optimizers = module.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    for step, batch in enumerate(batches):
        if step == args.warmup:
            start = time.perf_counter()
        loss = module(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    return args.steps * args.batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mixture", default="second", help="the demo mixture whose tasks the batches hold")
    parser.add_argument(
        "--frame-cache", action="store_true", help="both loops read frames from a frame cache built first"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for both loops' steps, >= 1 (default: one per core)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of each loop, taking turns; best kept")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides for both loops (logger=none, ...)")
    args = parser.parse_args()
    if (
        min(args.steps, args.batch, args.repeats, 1 if args.threads is None else args.threads) < 1
        or min(args.warmup, args.workers) < 0
    ):
        parser.error("--steps, --batch, --repeats and --threads must be >= 1, --warmup and --workers >= 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)  # the main process's; DataLoader workers take 1 each
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)  # data tables, GPU/TPU lines
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        write_demo_dataset(tmp / "demo")
        build_tiny_internvl(tmp / "tiny")
        cfg = config(tmp, args, args.warmup + args.steps)
        if args.frame_cache:
            files = [tmp / "demo" / f"{stage}_stage.json" for stage in ("first", "second")]
            data = cfg.data
            build_cache(files, tmp / "cache", data.num_frames, 56, max_tiles=data.max_tiles, progress=False)
            cfg.data.frame_cache = str(tmp / "cache")
        bare, (real, waiting) = 0.0, (0.0, 0.0)
        for _ in range(args.repeats):
            bare = max(bare, bare_loop(cfg, args))
            real, waiting = max((real, waiting), real_loop(cfg, args))
    print(f"bare loop (batches collated beforehand): {bare:7.1f} samples/s")
    frames = "frame cache" if args.frame_cache else "decoding"
    setting = f"{args.workers} workers, {frames}, {args.mixture} mixture, batch {args.batch}"
    print(f"train.py path ({setting}, {torch.get_num_threads()} step threads): {real:7.1f} samples/s")
    print(
        f"train.py path vs bare loop: {real / bare:.2f}x; data wait {100 * waiting:.1f}% of the loop's time"
    )


if __name__ == "__main__":
    main()

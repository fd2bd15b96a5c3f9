"""predict.py's speed: inputs answered per second at each batch size, with and without label scores.

    python bench/prediction.py [--ckpt demo_out/runs/second/adapter] [--inputs demo_out/data/media/clips]
                            [--task erc] [--batch 1 16] [--threads N] [-- HYDRA_OVERRIDES...]

Runs ``predict(cfg)`` itself (conf/predict.yaml with ``experiment=demo`` unless overrides say
otherwise) once per batch size and scores setting, and times ``trainer.predict`` only: reading and
encoding the media, generation, label scores and writing the JSONL, not loading the model. Needs
``make demo`` first for the defaults. On a shared CPU pass ``--threads 1``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from predict import predict  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"


class Clock(L.Callback):
    """Seconds between the start and the end of ``trainer.predict``."""

    def on_predict_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_predict_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default="demo_out/runs/second/adapter")
    parser.add_argument("--inputs", default="demo_out/data/media/clips")
    parser.add_argument("--task", default="erc")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (default: experiment=demo)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = args.overrides or ["experiment=demo"]
    print("| batch | scores | inputs | seconds | inputs/s |\n|---|---|---|---|---|")
    for batch in args.batch:
        for scores in (False, True):
            clock = Clock()
            with tempfile.TemporaryDirectory() as out, initialize_config_dir(str(CONF), version_base="1.3"):
                cfg = compose(
                    "predict",
                    overrides=[*overrides, f"ckpt={args.ckpt}", f"task={args.task}", f"inputs={args.inputs}",
                               f"output_dir={out}", f"data.batch_size={batch}", f"scores={scores}",
                               "+trainer.enable_progress_bar=false"],
                )  # fmt: skip
                writer = predict(cfg, callbacks=[clock])
            n = sum(writer.counts.values())
            print(f"| {batch} | {scores} | {n} | {clock.seconds:.2f} | {n / clock.seconds:.2f} |")


if __name__ == "__main__":
    main()

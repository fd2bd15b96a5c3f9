"""python tests/ddp_probe.py OUT_DIR MODEL_DIR DATA_DIR [STEPS]

Trains the demo experiment for a few steps under 2-process CPU DDP (gloo) through ``train.train(cfg)``
and records, per rank, what every step saw: ``OUT_DIR/rank{R}.jsonl`` holds one line per step
(``step``, ``task``, ``where`` of each record) and a last line with hashes of the trainable
parameters at the start and the end of fit. tests/test_ddp.py runs it and checks the lines.

A script rather than a test because Lightning's ``ddp`` launcher starts the other rank by
re-executing ``sys.argv``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]


class StepRecorder(L.Callback):
    """Writes what each training step of this rank saw, and the trainable weights' hashes, as JSON lines."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.lines: list[dict] = []
        self.start_hash: str | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start_hash = trainable_hash(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch: dict, batch_idx: int) -> None:
        where = [r.where for r in batch["records"]] + [s.where for s in batch["skipped"]]
        self.lines.append({"step": trainer.global_step, "task": batch["task"], "where": where})

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        summary = {
            "world_size": trainer.world_size,
            "start_hash": self.start_hash,
            "end_hash": trainable_hash(pl_module),
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"rank{trainer.global_rank}.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in [*self.lines, summary]))


def trainable_hash(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(module.named_parameters(), key=lambda item: item[0]):
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def main(out_dir: str, model_dir: str, data_dir: str, steps: str = "6") -> None:
    sys.path.insert(0, str(ROOT))  # train.py sits at the repository root, beside conf/
    from train import train

    overrides = [
        "experiment=demo",
        f"model.path={model_dir}",
        f"data.data_dir={data_dir}",
        "trainer.devices=2",
        "++trainer.strategy=ddp",
        f"++trainer.max_steps={steps}",
        "++trainer.enable_progress_bar=false",
        # compose() leaves ${hydra:runtime.output_dir} unresolved: give the run directory itself. The
        # csv logger stays: with logger=none the default LearningRateMonitor refuses to start.
        f"output_dir={Path(out_dir) / 'run'}",
        # The launcher re-executes this file for rank 1, where it is __main__ again.
        "+callbacks.step_recorder._target_=__main__.StepRecorder",
        f"+callbacks.step_recorder.out_dir={out_dir}",
    ]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    train(cfg)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__.splitlines()[0])
    main(*sys.argv[1:])

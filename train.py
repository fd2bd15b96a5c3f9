"""python train.py stage=first | stage=second ckpt=PATH | stage=curriculum | experiment=demo

Thin entry point: Hydra composes conf/train.yaml and hands the config to ``train(cfg)``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ThroughputMonitor
from omegaconf import DictConfig, open_dict

from m2se.data.records import RecordError
from m2se.data.video import MediaError
from m2se.model.internvl import resolve_model_path

# Third-party deprecation chatter that a user can do nothing about.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated")

# What bad input or a wrong path raises; these end the run with one line, not a traceback.
USER_ERRORS = (RecordError, MediaError, OSError, ValueError, InstantiationException)


def one_line(err: BaseException) -> str:
    """The innermost cause's first line: Hydra wraps errors raised while building objects."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return str(err).strip().splitlines()[0]


def prepare_demo(cfg: DictConfig) -> None:
    """Build the tiny model and the demo dataset where the config expects them, if they are missing."""
    from m2se.data.demo import write_demo_dataset
    from m2se.model.tiny import build_tiny_internvl

    if not (Path(cfg.model.path) / "config.json").is_file():
        build_tiny_internvl(Path(cfg.model.path))
    if not (Path(cfg.data.data_dir) / "first_stage.json").is_file():
        write_demo_dataset(Path(cfg.data.data_dir))


def build_trainer(cfg: DictConfig, has_validation: bool) -> L.Trainer:
    logger = instantiate(cfg.logger) if cfg.logger else False
    callbacks = [instantiate(c, _convert_="all") for c in cfg.callbacks.values() if c]
    if not logger:  # these log through a logger and refuse to run without one
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor | ThroughputMonitor)]
    for callback in callbacks:
        if isinstance(callback, ModelCheckpoint) and not has_validation:
            callback.monitor, callback.save_top_k = None, 1  # nothing to select on: keep the latest
    precision = cfg.trainer.precision
    if precision == "auto":
        precision = "bf16-mixed" if torch.cuda.is_available() else "32-true"
    return instantiate(cfg.trainer, callbacks=callbacks, logger=logger, precision=precision, _convert_="all")


def train(cfg: DictConfig) -> tuple[L.Trainer, L.LightningModule, L.LightningDataModule]:
    """Set up data, model and trainer from the config and fit; returns them for inspection."""
    L.seed_everything(cfg.seed, workers=True)
    if cfg.stage == "second" and not (cfg.ckpt or cfg.resume):
        raise ValueError(
            "stage=second needs ckpt=PATH: stage one's checkpoints/last.ckpt or its adapter folder"
        )
    if cfg.prepare_demo:
        prepare_demo(cfg)
    with open_dict(cfg):  # the processor and the module read the resolved, native directory
        cfg.model.path = str(resolve_model_path(cfg.model.path, cfg.model.cache_dir))
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    module = instantiate(cfg.module, _convert_="all")
    trainer = build_trainer(cfg, has_validation=bool(datamodule.val_records))
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.resume)
    return trainer, module, datamodule


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except USER_ERRORS as err:
        if os.environ.get("M2SE_TRACEBACK"):
            raise
        sys.exit(f"error: {one_line(err)}")


if __name__ == "__main__":
    main()

"""python train.py stage=first | python train.py experiment=demo

Thin entry point: Hydra composes conf/train.yaml and hands the config to ``train(cfg)``.
"""

from __future__ import annotations

import os
import sys

import hydra
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch import seed_everything
from omegaconf import DictConfig

from m2se.data.datamodule import MultiTaskDataModule
from m2se.data.records import RecordError
from m2se.data.video import MediaError

# What bad input or a wrong path raises; these end the run with one line, not a traceback.
USER_ERRORS = (RecordError, MediaError, OSError, ValueError, InstantiationException)


def one_line(err: BaseException) -> str:
    """The innermost cause's first line: Hydra wraps errors raised while building objects."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return str(err).strip().splitlines()[0]


def train(cfg: DictConfig) -> MultiTaskDataModule:
    """Build the data pipeline for the configured stage and draw a first batch of each split.

    Model training (the LightningModule and the curriculum) builds on this in the next milestone.
    """
    seed_everything(cfg.seed, workers=True)
    datamodule: MultiTaskDataModule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    shape = tuple(batch["input_ids"].shape) if batch["input_ids"] is not None else None
    print(f"stage {cfg.stage}: mixture '{datamodule.mixture}', first batch task {batch['task']}, ids {shape}")
    print("Model training is not wired yet: this run checks the data pipeline only.")
    return datamodule


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

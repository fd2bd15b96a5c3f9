"""python train.py stage=first | stage=second ckpt=PATH | stage=curriculum | experiment=demo

Thin entry point: Hydra composes conf/train.yaml and hands the config to ``train(cfg)``.
"""

from __future__ import annotations

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ThroughputMonitor
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from omegaconf import DictConfig, OmegaConf

from m2se.callbacks.adapter import AdapterExport
from m2se.cli import build_data, build_module, precision, prepare_demo, run
from m2se.config_checks import check_before_work
from m2se.files import first_line
from m2se.model.checkpoints import CheckpointError, SafeCheckpointIO
from m2se.versions import write_versions


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """The configured callbacks; built before data and model, so that a wrong setting stops the run
    before minutes of loading."""
    return [instantiate(c, _convert_="all") for c in cfg.callbacks.values() if c]


def build_trainer(
    cfg: DictConfig, has_validation: bool, callbacks: list[L.Callback] | None = None
) -> L.Trainer:
    logger = instantiate(cfg.logger) if cfg.logger else False
    if logger:  # the whole run, not only the module's arguments Lightning logs by itself
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    callbacks = build_callbacks(cfg) if callbacks is None else callbacks
    if not logger:  # these log through a logger and refuse to run without one
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor | ThroughputMonitor)]
    for callback in callbacks:
        if isinstance(callback, ModelCheckpoint) and not has_validation:
            callback.monitor, callback.save_top_k = None, 1  # nothing to select on: keep the latest
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=logger,
        precision=precision(cfg.trainer.precision),
        plugins=[SafeCheckpointIO()],  # checkpoints load with weights_only and save atomically
        _convert_="all",
    )


def train(cfg: DictConfig) -> tuple[L.Trainer, L.LightningModule, L.LightningDataModule]:
    """Set up data, model and trainer from the config and fit; returns them for inspection."""
    check_before_work(cfg)  # a wrong path or mixture stops the run before anything loads
    L.seed_everything(cfg.seed, workers=True)
    if rank_zero_only.rank == 0:
        write_versions(cfg.output_dir)
    if cfg.stage == "second" and not (cfg.ckpt or cfg.resume):
        raise ValueError(
            "stage=second needs ckpt=PATH: stage one's checkpoints/last.ckpt or its adapter folder"
        )
    callbacks = build_callbacks(cfg)
    if cfg.prepare_demo:
        prepare_demo(cfg)
    backbone, datamodule = build_data(cfg)
    datamodule.setup("fit")
    module = build_module(cfg, backbone, datamodule)
    trainer = build_trainer(cfg, has_validation=bool(datamodule.val_records), callbacks=callbacks)
    started = FirstBatch()
    trainer.callbacks.append(started)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.resume, weights_only=True)
    except (KeyError, TypeError, AttributeError, IndexError, RuntimeError) as err:
        # Before the first batch, with resume=, these come from restoring a checkpoint whose layout is
        # not what this run wrote (a forged or foreign file that passed the reader's checks).
        if cfg.resume and not started.reached:
            raise CheckpointError(
                f"{cfg.resume}: cannot resume from it ({type(err).__name__}: {first_line(err)[:200]})"
            ) from err
        raise
    export = next((c for c in trainer.callbacks if isinstance(c, AdapterExport)), None)
    if cfg.resume and export is not None and not export.exported:
        # Lightning returns at once when the checkpoint already reached max_steps / max_epochs.
        rank_zero_info(
            f"resume: nothing left to train: {cfg.resume} is at step {trainer.global_step}, where "
            "trainer.max_steps / max_epochs end this run (raise them to train on)"
        )
        export.export(trainer, module)
    return trainer, module, datamodule


class FirstBatch(L.Callback):
    """Whether training reached its first batch (everything before it restores state or sets up)."""

    reached = False

    def on_train_batch_start(self, *args, **kwargs) -> None:
        self.reached = True


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(train, cfg)


if __name__ == "__main__":
    main()

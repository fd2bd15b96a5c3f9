"""Write the PEFT adapter folder when training ends, and say where it landed."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from m2se.model.module import M2SEModule

log = logging.getLogger(__name__)


class AdapterExport(L.Callback):
    """At the end of fit, ``pl_module.save_adapter(dirpath)`` on rank zero (every stage's LoRA, stacked).

    ``last.ckpt`` is written at the final step first (Lightning's own last save may be steps older,
    from the last validation), so a failing export never costs the trained weights: the checkpoint
    holds them, and ``evaluate.py ckpt=.../last.ckpt`` or a later export reads it as is.
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.exported = False

    def on_train_end(self, trainer: L.Trainer, pl_module: M2SEModule) -> None:
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.save_last and checkpoint.dirpath:
            trainer.save_checkpoint(
                Path(checkpoint.dirpath) / f"last{checkpoint.FILE_EXTENSION}", weights_only=False
            )
        self.export(trainer, pl_module)

    def export(self, trainer: L.Trainer, pl_module: M2SEModule) -> None:
        if trainer.is_global_zero:
            path = pl_module.save_adapter(self.dirpath)
            log.info(f"adapter (stage {pl_module.stage}, PEFT format, base {pl_module.model_path}): {path}")
        self.exported = True

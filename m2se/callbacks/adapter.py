"""Write the PEFT adapter folder when training ends, and say where it landed."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from m2se.model.module import M2SEModule


class AdapterExport(L.Callback):
    """At the end of fit, ``pl_module.save_adapter(dirpath)`` on rank zero (every stage's LoRA, stacked)."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer: L.Trainer, pl_module: M2SEModule) -> None:
        if trainer.is_global_zero:
            path = pl_module.save_adapter(self.dirpath)
            print(f"adapter (stage {pl_module.stage}, PEFT format, base {pl_module.model_path}): {path}")

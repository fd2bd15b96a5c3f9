"""ParameterCount: one line saying what trains, in place of Lightning's model summary table.

Lightning's table lists the module's containers (metrics included) and a FLOPs column that reads 0
for a PEFT model; what a researcher checks before a long run is the trainable share.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_summary import get_human_readable_count


def parameter_line(module) -> str:
    """``trainable 18.9 K of 193 K parameters (9.78 %)`` for ``module``."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    share = 100 * trainable / total if total else 0.0
    return (
        f"trainable {get_human_readable_count(trainable).strip()} of "
        f"{get_human_readable_count(total).strip()} parameters ({share:.2f} %)"
    )


class ParameterCount(L.Callback):
    """Logs ``parameter_line`` when fitting starts (after the stage's LoRA is in place)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rank_zero_info(parameter_line(pl_module))

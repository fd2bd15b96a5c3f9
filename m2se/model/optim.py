"""AdamW with linear warmup and cosine decay, as EmoVerse trains (and the curriculum restarts per stage)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


@dataclass(frozen=True)
class OptimizerSettings:
    """AdamW + linear warmup + cosine decay (EmoVerse: lr 1e-4, weight decay 0.1, 5 % warmup)."""

    lr: float = 1e-4
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_ratio: float = 0.05
    min_lr_ratio: float = 0.0


def warmup_cosine(total: int, warmup_ratio: float, min_ratio: float):
    """LR multiplier per step: linear warmup, cosine to ``min_ratio``, then flat (never back up)."""
    warmup = math.ceil(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def adamw_warmup_cosine(module: nn.Module, settings: OptimizerSettings, total_steps: int) -> dict:
    """Lightning's ``configure_optimizers`` answer for the trainable parameters of ``module``."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [  # no weight decay on biases and norm gains, as transformers' Trainer does
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": settings.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]  # one group logs as plain `train/lr`
    optimizer = torch.optim.AdamW(groups, lr=settings.lr, betas=tuple(settings.betas))
    factor = warmup_cosine(total_steps, settings.warmup_ratio, settings.min_lr_ratio)
    scheduler = {"scheduler": LambdaLR(optimizer, factor), "interval": "step", "name": "train/lr"}
    return {"optimizer": optimizer, "lr_scheduler": scheduler}

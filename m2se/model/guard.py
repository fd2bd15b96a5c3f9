"""Non-finite training caught: NaN/inf steps skipped and counted, a diverged run stopped, NaN never saved."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn


class NonFiniteError(RuntimeError):
    """Training diverged: too many optimizer steps in a row with non-finite loss or gradients, or
    non-finite weights about to be saved."""


class NonFiniteGuard:
    """Decides, once per optimizer step, whether the step may update the weights.

    ``observe(loss)`` after each micro-batch's forward (no device sync); ``step_is_finite(module, step)``
    after backward, before the optimizer: if any observed loss or any gradient is NaN/inf, every
    gradient is dropped (AdamW skips parameters without one: weights and moments stay as they were)
    and the step is counted in ``skipped``. ``max_in_a_row`` skipped steps in a row raise
    ``NonFiniteError``. Under DDP the decision is all-reduced, so every rank skips together.
    """

    def __init__(self, max_in_a_row: int = 5) -> None:
        if max_in_a_row < 1:
            raise ValueError(f"max_nonfinite_steps must be at least 1, got {max_in_a_row}")
        self.max_in_a_row = max_in_a_row
        self.skipped = 0
        self._run: list[int] = []  # steps of the current run of skipped steps
        self._loss_finite: torch.Tensor | None = None  # all losses since the last step finite (on device)

    def observe(self, loss: torch.Tensor) -> None:
        finite = torch.isfinite(loss.detach())
        self._loss_finite = finite if self._loss_finite is None else self._loss_finite & finite

    def step_is_finite(
        self, module: nn.Module, step: int, params: Sequence[torch.Tensor] | None = None
    ) -> bool:
        """True: go ahead. False: this step's gradients were dropped. Raises NonFiniteError after too many.
        ``params``: the parameters the optimizer steps (default: all of ``module``'s; walking a frozen
        multi-billion-parameter model's modules every step costs milliseconds)."""
        params = list(module.parameters()) if params is None else params
        grads = [p.grad for p in params if p.grad is not None]
        # One reduction and one sync per step: a non-finite entry makes its tensor's norm non-finite.
        finite = (
            torch.isfinite(torch.stack(torch._foreach_norm(grads)).sum()) if grads else torch.tensor(True)
        )
        if self._loss_finite is not None:
            finite = finite & self._loss_finite.to(finite.device)
        self._loss_finite = None
        trainer = getattr(module, "_trainer", None)
        finite = bool(finite)
        if trainer is not None:
            finite = trainer.strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            self._run = []
            return True
        for p in params:
            p.grad = None
        self.skipped += 1
        self._run.append(step)
        if len(self._run) >= self.max_in_a_row:
            raise NonFiniteError(
                f"training diverged: {len(self._run)} optimizer steps in a row (steps {self._run[0]}-"
                f"{self._run[-1]}) had a non-finite loss or gradients (module.max_nonfinite_steps="
                f"{self.max_in_a_row}); lower module.optimizer.lr (no checkpoint was written with non-finite weights)"
            )
        rank_zero_info(
            f"warning: step {step}: non-finite loss or gradients, step skipped ({len(self._run)} in a row; "
            f"the run stops at module.max_nonfinite_steps={self.max_in_a_row})"
        )
        return False


def check_weights(module: nn.Module, step: int, what: str) -> None:
    """Raise NonFiniteError, naming ``what`` would have been written, if a trained tensor holds NaN/inf."""
    bad = [n for n, p in module.named_parameters() if p.requires_grad and not torch.isfinite(p).all()]
    if bad:
        raise NonFiniteError(
            f"step {step}: {len(bad)} trained tensors hold NaN/inf (first: {bad[0]}); not writing {what}; "
            "earlier checkpoints are kept. Lower module.optimizer.lr"
        )

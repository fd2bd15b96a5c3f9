"""CurriculumCallback: stage one's mixture, then stage two's, in one run."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from lightning.pytorch.utilities import rank_zero_info

from m2se.callbacks.checkpoint import PeriodicCheckpoint
from m2se.model.module import M2SEModule


class CurriculumCallback(L.Callback):
    """Switches the DataModule from ``first`` to ``second`` at ``switch_epoch`` or, when given (it then
    replaces the epoch), at optimizer step ``switch_step``.

    With ``restart_lora`` (EmoVerse's recipe, the default) the stage-one LoRA is merged into the base,
    a fresh LoRA and a fresh optimizer start, each stage with its own warmup + cosine schedule, and
    the stage-one adapter folder is written to ``adapter_dir`` (if given). Without it the same LoRA
    and optimizer keep training on the new mixture. The switch happens at an optimizer-step
    boundary, is logged as ``train/stage`` 1 → 2, and is restored on resume.
    """

    def __init__(
        self,
        first: str = "first",
        second: str = "second",
        switch_epoch: int | None = None,
        switch_step: int | None = None,
        restart_lora: bool = True,
        adapter_dir: str | None = None,
    ) -> None:
        if switch_step is not None:  # a step, when given, replaces the epoch (conf's default 2)
            switch_epoch = None
        if switch_epoch is None and switch_step is None:
            raise ValueError("the curriculum needs callbacks.curriculum.switch_epoch or switch_step")
        for name, value in (("switch_epoch", switch_epoch), ("switch_step", switch_step)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"callbacks.curriculum.{name} must be a positive integer, got {value!r}")
        self.first, self.second, self.restart_lora = first, second, restart_lora
        self.switch_epoch, self.switch_step, self.adapter_dir = switch_epoch, switch_step, adapter_dir
        self.switched = False
        self._module: M2SEModule | None = None
        # Optimizer steps each stage's warmup + cosine spans: (0, switch), then (switch, total).
        self._windows: tuple[tuple[int, int], tuple[int, int]] | None = None

    def setup(self, trainer: L.Trainer, pl_module: M2SEModule, stage: str) -> None:
        if stage != "fit":
            return
        # The sampler switches its mixture at the exact batch: the first micro-batch of switch_step, or
        # the first batch of switch_epoch, though the loader draws ahead of the step that trains it. A
        # resume restores this timeline with the sampler's state.
        if self.switch_step is not None:
            after = self.switch_step * trainer.accumulate_grad_batches
            trainer.datamodule.schedule_mixture(self.second, after_batches=after)
        else:
            trainer.datamodule.schedule_mixture(self.second, at_epoch=self.switch_epoch)
        if not self.restart_lora:
            return
        if not isinstance(trainer.strategy, (SingleDeviceStrategy, DDPStrategy)):
            raise ValueError(
                "a curriculum that restarts the LoRA needs a single device or DDP; with "
                f"{type(trainer.strategy).__name__} set restart_lora=false or run the stages separately"
            )
        # Planned here, before a resume restores anything, so that a resumed run plans the same.
        total = int(trainer.estimated_stepping_batches)  # sets num_training_batches (limits included)
        if self.switch_step is not None:
            planned = self.switch_step
        else:
            planned = self.switch_epoch * math.ceil(
                trainer.num_training_batches / trainer.accumulate_grad_batches
            )
        self._module, self._windows = pl_module, ((0, planned), (planned, total))
        self._set_schedule_window()

    def _set_schedule_window(self) -> None:
        # Each stage gets its own warmup + cosine; a resume restores `switched` after setup, so again then.
        if self._module is not None and self._windows is not None:
            self._module.schedule_window = self._windows[1] if self.switched else self._windows[0]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: M2SEModule) -> None:
        if self.switch_epoch is not None and not self.switched and trainer.current_epoch >= self.switch_epoch:
            self._switch(trainer, pl_module)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: M2SEModule, batch, batch_idx: int) -> None:
        due = self.switch_step is not None and trainer.global_step >= self.switch_step
        at_boundary = batch_idx % trainer.accumulate_grad_batches == 0
        if due and at_boundary and not self.switched:
            self._switch(trainer, pl_module)

    def _switch(self, trainer: L.Trainer, pl_module: M2SEModule) -> None:
        self.switched = True  # the mixture itself switched in the sampler, at this very batch
        # Stage two validates its own tasks: its val/loss does not rank against stage one's.
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, PeriodicCheckpoint):
                callback.forget_best()
        if self.restart_lora:
            if self.adapter_dir and trainer.is_global_zero:
                pl_module.save_adapter(Path(self.adapter_dir))
            pl_module.start_new_lora()
            total = self._windows[1][1]
            self._windows = (self._windows[0], (trainer.global_step, total))
            self._set_schedule_window()
            strategy = trainer.strategy
            if isinstance(strategy, DDPStrategy):  # the new LoRA's parameters must join DDP
                strategy.model = strategy.lightning_module
                strategy.configure_ddp()
            strategy.setup_optimizers(trainer)
        else:
            pl_module.stage += 1
        rank_zero_info(
            f"curriculum: step {trainer.global_step}, mixture '{self.second}', stage {pl_module.stage}"
        )

    def state_dict(self) -> dict:
        return {"switched": self.switched, "windows": [list(w) for w in self._windows or ()]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.switched = state_dict["switched"]
        if state_dict.get("windows"):
            self._windows = tuple(tuple(w) for w in state_dict["windows"])
        self._set_schedule_window()

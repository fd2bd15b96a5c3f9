"""CurriculumCallback: stage one's mixture, then stage two's, in one run."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from lightning.pytorch.utilities import rank_zero_info

from m2se.model.module import M2SEModule


class CurriculumCallback(L.Callback):
    """Switches the DataModule from ``first`` to ``second`` at ``switch_epoch`` or ``switch_step``.

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
        if (switch_epoch is None) == (switch_step is None):
            raise ValueError("CurriculumCallback needs exactly one of switch_epoch and switch_step")
        self.first, self.second, self.restart_lora = first, second, restart_lora
        self.switch_epoch, self.switch_step, self.adapter_dir = switch_epoch, switch_step, adapter_dir
        self.switched = False
        self._window: tuple[M2SEModule, int, int] | None = None  # module, planned switch step, total steps

    def _planned_step(self, trainer: L.Trainer) -> int:
        if self.switch_step is not None:
            return self.switch_step
        batches = len(trainer.datamodule.sampler)  # stage one's epoch length
        return self.switch_epoch * math.ceil(batches / trainer.accumulate_grad_batches)

    def setup(self, trainer: L.Trainer, pl_module: M2SEModule, stage: str) -> None:
        if stage != "fit":
            return
        if self.switch_step is not None and not self.switched:
            # The loader draws a batch or two ahead of the step that trains it: the sampler switches
            # exactly at the first micro-batch of switch_step (a resume restores this schedule).
            after = self.switch_step * trainer.accumulate_grad_batches
            trainer.datamodule.schedule_mixture(self.second, after)
        if not self.restart_lora:
            return
        if not isinstance(trainer.strategy, (SingleDeviceStrategy, DDPStrategy)):
            raise ValueError(
                "a curriculum that restarts the LoRA needs a single device or DDP; with "
                f"{type(trainer.strategy).__name__} set restart_lora=false or run the stages separately"
            )
        self._window = (pl_module, self._planned_step(trainer), trainer.estimated_stepping_batches)
        self._set_schedule_window()

    def _set_schedule_window(self) -> None:
        # Each stage gets its own warmup + cosine; a resume restores `switched` after setup, so again then.
        if self._window is not None:
            module, planned, total = self._window
            module.schedule_window = (planned, total) if self.switched else (0, planned)

    def on_train_start(self, trainer: L.Trainer, pl_module: M2SEModule) -> None:
        # A resumed run after the switch: the sampler state already holds the mixture; keep them agreeing.
        if self.switched:
            trainer.datamodule.set_mixture(self.second)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: M2SEModule) -> None:
        if self.switch_epoch is not None and not self.switched and trainer.current_epoch >= self.switch_epoch:
            self._switch(trainer, pl_module)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: M2SEModule, batch, batch_idx: int) -> None:
        due = self.switch_step is not None and trainer.global_step >= self.switch_step
        at_boundary = batch_idx % trainer.accumulate_grad_batches == 0
        if due and at_boundary and not self.switched:
            self._switch(trainer, pl_module)

    def _switch(self, trainer: L.Trainer, pl_module: M2SEModule) -> None:
        if trainer.datamodule.mixture != self.second:  # a step switch was scheduled in the sampler
            trainer.datamodule.set_mixture(self.second)
        self.switched = True
        if self.restart_lora:
            if self.adapter_dir and trainer.is_global_zero:
                pl_module.save_adapter(Path(self.adapter_dir))
            pl_module.start_new_lora()
            pl_module.schedule_window = (trainer.global_step, trainer.estimated_stepping_batches)
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
        return {"switched": self.switched}

    def load_state_dict(self, state_dict: dict) -> None:
        self.switched = state_dict["switched"]
        self._set_schedule_window()

"""A callback that SIGKILLs training at a given optimizer step, for the resume tests.

Used as ``python train.py ... +callbacks.kill._target_=tests.kill_probe.KillAt +callbacks.kill.step=K``:
the process dies at the start of step K, after last.ckpt of step K (every_n_train_steps=1) is written,
with no chance to clean up, as a preempted GPU job does.
"""

import os
import signal

import lightning as L


class KillAt(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)

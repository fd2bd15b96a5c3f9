"""resume= after a SIGKILL trains exactly the weights and the task sequence of an uninterrupted run.

The killed run is the real ``python train.py`` in a subprocess (SIGKILL at the start of a step, as a
preempted job dies); reference and resumed runs go through ``train(cfg)``. Short epochs (5 batches),
validation every 3 steps and a curriculum switch at step 7 put epoch ends, validations and the
switch between the checkpoint and the kill.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

from train import train

ROOT = Path(__file__).resolve().parents[1]
SWITCH = 7
RUN = [
    "experiment=demo",
    "stage=curriculum",
    "callbacks.curriculum.switch_epoch=null",
    f"callbacks.curriculum.switch_step={SWITCH}",
    "trainer.max_epochs=null",
    "trainer.max_steps=12",
    "trainer.deterministic=true",
    "trainer.log_every_n_steps=1",
    "trainer.val_check_interval=3",
    "trainer.limit_val_batches=1",
    "module.val_generate=2",
    "data.num_batches=5",
    "data.batch_size=4",
    "+callbacks.model_checkpoint.every_n_train_steps=1",
]


def overrides(out: Path, tiny_model_dir, demo_dir, workers: int) -> list[str]:
    paths = [f"model.path={tiny_model_dir}", f"data.data_dir={demo_dir}"]
    return [*RUN, *paths, f"data.num_workers={workers}", f"hydra.run.dir={out}"]


def run_in_process(out: Path, extra: list[str]) -> None:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*extra, f"output_dir={out}"])
    train(cfg)


def steps(out: Path) -> list[tuple[int, str, str]]:
    """(step, task, loss) of every logged training step, in order."""
    with open(out / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = []
    for row in rows:
        for key, value in row.items():
            if value and key.startswith("train/") and key.endswith("/loss") and key.count("/") == 2:
                logged.append((int(row["step"]), key.split("/")[1], value))
    return logged


@pytest.fixture(autouse=True)
def _restore_determinism():
    yield
    torch.use_deterministic_algorithms(False)  # trainer.deterministic sets it process-wide


@pytest.fixture(scope="module")
def references(tiny_model_dir, demo_dir, tmp_path_factory):
    runs = {}
    for workers in (0, 2):
        out = tmp_path_factory.mktemp(f"reference{workers}")
        run_in_process(out, overrides(out, tiny_model_dir, demo_dir, workers))
        runs[workers] = out
    yield runs
    torch.use_deterministic_algorithms(False)


def test_workers_do_not_change_what_trains(references):
    zero, two = (load_file(references[w] / "adapter/adapter_model.safetensors") for w in (0, 2))
    assert zero.keys() == two.keys() and all(torch.equal(zero[k], two[k]) for k in zero)
    assert steps(references[0]) == steps(references[2])
    tasks = [task for _, task, _ in steps(references[0])]
    assert len(tasks) == 12 and set(tasks[:SWITCH]) <= {"msa", "mer", "fer"}
    assert set(tasks[SWITCH:]) <= {"msa", "eri", "erc", "ecpe"}


# Killed at step 5: before the switch, at an epoch's end; 7: the switch's own step (the checkpoint
# predates it); 9: after the switch, mid-epoch.
@pytest.mark.parametrize(("workers", "kill_at"), [(0, 5), (2, 5), (2, 7), (0, 9), (2, 9)])
def test_killed_and_resumed_run_ends_with_the_same_adapter(
    references, tiny_model_dir, demo_dir, tmp_path, workers, kill_at
):
    out = tmp_path / "run"
    args = overrides(out, tiny_model_dir, demo_dir, workers)
    kill = ["+callbacks.kill._target_=tests.kill_probe.KillAt", f"+callbacks.kill.step={kill_at}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run(
        [sys.executable, "train.py", *args, *kill], cwd=ROOT, env=env, capture_output=True
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert not (out / "adapter").exists()  # it never got to the end
    run_in_process(out, [*args, f"resume={out / 'checkpoints/last.ckpt'}"])

    reference = load_file(references[workers] / "adapter/adapter_model.safetensors")
    resumed = load_file(out / "adapter/adapter_model.safetensors")
    assert resumed.keys() == reference.keys()
    delta = max((resumed[k] - reference[k]).abs().max().item() for k in reference)
    print(f"resume max |delta| (workers {workers}, killed at step {kill_at}): {delta}")
    assert delta == 0
    # The continued metrics.csv holds each step once, with the same task and loss as the reference.
    assert steps(out) == steps(references[workers])

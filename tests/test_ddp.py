"""Two CPU processes under Lightning DDP (gloo), through train.train(cfg): one task per step on every
rank, no record seen by both ranks in a step, and the same LoRA weights on both ranks afterwards.

The run happens in tests/ddp_probe.py, a subprocess, because Lightning's launcher starts rank 1 by
re-executing the script; the probe leaves one JSON-lines file per rank that these tests read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("ddp_probe.py")
STEPS = 6
TIMEOUT_S = 240  # the run takes about 25 s on 2 cores; a hung rendezvous must not hang the suite


def run_probe(out_dir: Path, model_dir: Path, data_dir: Path) -> None:
    command = [sys.executable, str(PROBE), str(out_dir), str(model_dir), str(data_dir), str(STEPS)]
    # One thread per rank: two ranks share the machine's cores. Its own session, so that a timeout
    # kills rank 1 (the launcher's child) along with rank 0.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    probe = subprocess.Popen(
        command,
        cwd=PROBE.parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = probe.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(probe.pid, signal.SIGKILL)
        output, _ = probe.communicate()
        pytest.fail(f"DDP probe still running after {TIMEOUT_S} s; its output ends with:\n{output[-6000:]}")
    if probe.returncode != 0:
        pytest.fail(f"DDP probe exited with {probe.returncode}; its output ends with:\n{output[-6000:]}")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory, tiny_model_dir, demo_dir) -> list[dict]:
    """Per rank: ``steps`` (one {step, task, where} per training step) and the summary line."""
    out_dir = tmp_path_factory.mktemp("ddp")
    run_probe(out_dir, tiny_model_dir, demo_dir)
    found = []
    for rank in range(2):
        path = out_dir / f"rank{rank}.jsonl"
        assert path.is_file(), f"rank {rank} wrote no record of its steps ({path})"
        *steps, summary = [json.loads(line) for line in path.read_text().splitlines()]
        found.append({"steps": steps, **summary})
    return found


def test_both_ranks_run_every_step(ranks):
    for rank in ranks:
        assert rank["world_size"] == 2
        assert [s["step"] for s in rank["steps"]] == list(range(STEPS))
        assert all(s["where"] for s in rank["steps"]), "a step had an empty batch"


def test_ranks_train_the_same_task_at_each_step(ranks):
    tasks = [[s["task"] for s in rank["steps"]] for rank in ranks]
    assert None not in tasks[0], "a batch mixed tasks"
    assert tasks[0] == tasks[1]
    assert len(set(tasks[0])) > 1, "six steps of one task say little about agreement"


def test_ranks_never_share_a_record_within_a_step(ranks):
    for zero, one in zip(ranks[0]["steps"], ranks[1]["steps"], strict=True):
        shared = set(zero["where"]) & set(one["where"])
        assert not shared, f"step {zero['step']}: both ranks drew {sorted(shared)}"


def test_lora_weights_trained_and_identical_on_both_ranks(ranks):
    zero, one = ranks
    assert zero["start_hash"] == one["start_hash"]
    assert zero["end_hash"] != zero["start_hash"], "the LoRA weights did not change"
    # Different data on each rank: only averaged gradients keep the weights equal.
    assert zero["end_hash"] == one["end_hash"]

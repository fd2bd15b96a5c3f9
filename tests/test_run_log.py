"""The run folder's <job>.log holds what the console showed: m2se's and Lightning's messages, with times."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_evaluate_log_holds_the_table_the_console_printed(demo_dir, tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "evaluate.py", "experiment=demo", "task=erc", "baseline=majority",
         f"data.data_dir={demo_dir}", f"hydra.run.dir={run}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    table = next(line for line in done.stdout.splitlines() if line.startswith("| erc |"))
    log = (run / "evaluate.log").read_text()
    assert table in log and "][m2se.evaluate][INFO] - " in log
    assert "][lightning.fabric.utilities.seed][INFO] - Seed set to 42" in log
    assert done.stderr.count("Seed set to 42") == 1  # printed once, not once per handler

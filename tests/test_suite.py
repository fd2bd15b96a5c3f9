"""The suite itself: no test file is hidden from pytest (as a tests folder named build once was)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_file_is_collected():
    spec = importlib.util.spec_from_file_location("check_collected", ROOT / ".ci" / "check_collected.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    assert check.uncollected(ROOT) == []

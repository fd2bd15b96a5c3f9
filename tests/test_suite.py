"""The suite itself: no test file is hidden from pytest (as a tests folder named build once was)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_file_is_collected(request, collected_files):
    # The session's own collection, so no second pytest runs; .ci/check_collected.py is the same check
    # on its own, for CI, where a hidden test_suite.py would hide this test too.
    start = request.config.invocation_params.dir
    given = {(start / arg.split("::")[0]).resolve() for arg in request.config.args}
    if not given <= {ROOT, ROOT / "tests"}:
        pytest.skip("checks the whole suite's collection: run pytest without paths")
    on_disk = set((ROOT / "tests").rglob("test_*.py"))
    assert sorted(str(p.relative_to(ROOT)) for p in on_disk - collected_files) == []

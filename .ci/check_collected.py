"""Fail when a tests/**/test_*.py file is not collected by pytest (a folder name must never hide tests).

Usage: python .ci/check_collected.py   (from the repository root, with the project's venv python)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def uncollected(root: Path) -> list[str]:
    """Test files under ``root/tests`` that ``pytest --collect-only`` (markers ignored) does not list."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-o", "addopts=", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"pytest could not collect the suite:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    collected = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    on_disk = {str(p.relative_to(root)) for p in (root / "tests").rglob("test_*.py")}
    return sorted(on_disk - collected)


if __name__ == "__main__":
    missing = uncollected(Path(__file__).resolve().parents[1])
    if missing:
        sys.exit("test files pytest does not collect:\n  " + "\n  ".join(missing))
    print("every test file is collected")

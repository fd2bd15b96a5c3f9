"""What a run was made with: the git commit and every installed package's version, in ``versions.json``.

Written into every run folder (train.py, evaluate.py), so a number can be traced to the code and the
libraries that produced it. The project installs from ``requirements.lock``; this records what was
actually imported, lock or not.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from m2se.files import write_json

FILE = "versions.json"
REPO = Path(__file__).resolve().parents[1]


def git_state(repo: Path = REPO) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout the code runs from; None outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def versions() -> dict:
    """The code's commit, Python, platform, torch's CUDA build, and ``{package: version}`` of everything installed."""
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower()] = dist.version
    return {
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": {"version": torch.__version__, "cuda": torch.version.cuda},
        "packages": dict(sorted(packages.items())),
    }


def write_versions(out_dir: str | Path) -> Path:
    """Write ``versions.json`` into ``out_dir`` (created if missing); returns its path."""
    path = Path(out_dir) / FILE
    write_json(path, versions(), indent=2)
    return path

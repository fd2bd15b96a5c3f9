"""The install: requirements.lock pins every dependency pyproject.toml names, within its range; every run
folder records the versions and the commit it ran with."""

import json
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from m2se.versions import FILE, versions, write_versions

ROOT = Path(__file__).resolve().parents[1]


def locked() -> dict[str, Requirement]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(r.name): r for r in pins}


def test_the_lock_pins_every_dependency_within_its_range():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    pins = locked()
    assert all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==" for r in pins.values())
    for requirement in wanted:
        if requirement.marker and not requirement.marker.evaluate():
            continue
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not in requirements.lock"
        version = next(iter(pin.specifier)).version
        assert requirement.specifier.contains(version, prereleases=True), f"{pin} is outside {requirement}"


def test_a_run_folder_records_versions_and_commit(tmp_path):
    path = write_versions(tmp_path / "run")
    saved = json.loads(path.read_text())
    assert path.name == FILE and saved == json.loads(json.dumps(versions()))
    assert saved["packages"]["torch"].startswith(saved["torch"]["version"].split("+")[0])
    assert {"transformers", "peft", "lightning"} <= set(saved["packages"])
    if (ROOT / ".git").exists():
        assert len(saved["git"]["commit"]) == 40 and isinstance(saved["git"]["dirty"], bool)

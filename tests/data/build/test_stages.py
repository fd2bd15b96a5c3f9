import json

import pytest
import yaml

from m2se.data.build.stages import MANIFEST, StageConfigError, build_stages
from m2se.data.records import load_records


@pytest.fixture
def task_files(demo_dir, tmp_path):
    """The demo's stage files split back into one built file per task, as the builders write them."""
    built = tmp_path / "built"
    built.mkdir()
    for stage in ("first_stage", "second_stage"):
        items = json.loads((demo_dir / f"{stage}.json").read_text())
        records = load_records(demo_dir / f"{stage}.json").records
        for task in {r.task for r in records}:
            mine = [item for item, r in zip(items, records, strict=True) if r.task == task]
            (built / f"{stage}_{task}.json").write_text(json.dumps(mine))
    return built


def write_config(path, seed=42, **stages):
    path.write_text(yaml.safe_dump({"seed": seed, "stages": stages}))
    return path


def test_stages_follow_the_config_and_rebuild_bit_for_bit(task_files, tmp_path):
    config = write_config(
        tmp_path / "stages.yaml",
        first_stage=[
            {"file": "built/first_stage_msa.json", "fraction": 1.0},
            {"file": "built/first_stage_mer.json", "count": 30},
            {"file": "built/first_stage_fer.json", "fraction": 0.5},
        ],
        second_stage=[
            {"file": "built/second_stage_erc.json", "count": 50},
            {"file": "built/first_stage_msa.json", "count": 10},
        ],
    )
    manifest = build_stages(config, tmp_path / "a")
    assert manifest["stages"]["first_stage"]["tasks"] == {"fer": 100, "mer": 30, "msa": 200}
    assert manifest["stages"]["second_stage"]["tasks"] == {"erc": 50, "msa": 10}
    assert manifest["sources"]["built/first_stage_mer.json"]["records"] == 150
    assert len(manifest["sources"]["built/first_stage_mer.json"]["sha256"]) == 64
    build_stages(config, tmp_path / "b")
    for name in ("first_stage.json", "second_stage.json", MANIFEST):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = write_config(tmp_path / "other.yaml", seed=7, **yaml.safe_load(config.read_text())["stages"])
    build_stages(other, tmp_path / "c")
    assert (tmp_path / "a/first_stage.json").read_bytes() != (tmp_path / "c/first_stage.json").read_bytes()
    tasks = [r.task for r in load_records(tmp_path / "a/first_stage.json", require_media=False).records]
    assert tasks[:50].count("msa") < 50  # shuffled, not file by file


@pytest.mark.parametrize(
    "entry,message",
    [
        (
            {"file": "built/first_stage_msa.json", "count": 5, "fraction": 0.5},
            "give exactly one of count and fraction",
        ),
        ({"file": "built/first_stage_msa.json", "count": 10_000}, "count 10000 but the file has 200 records"),
        ({"file": "built/absent.json", "count": 1}, "no such file built/absent.json"),
    ],
)
def test_config_errors_name_the_entry(task_files, tmp_path, entry, message):
    config = write_config(tmp_path / "s.yaml", first_stage=[entry])
    with pytest.raises(StageConfigError, match=rf"s.yaml: stages.first_stage\[0\]: {message}"):
        build_stages(config, tmp_path / "out")


def test_unreadable_inputs_are_one_line_errors_naming_the_file(task_files, tmp_path, capsys):
    from m2se.data.build.__main__ import main

    assert main(["stages", "--config", str(tmp_path / "absent.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "absent.yaml: cannot read" in capsys.readouterr().err

    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: 1\nstages: {first_stage: [\n")
    assert main(["stages", "--config", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "broken.yaml: not valid YAML at line" in capsys.readouterr().err

    (tmp_path / "bad.json").write_text('[{"query')
    config = write_config(tmp_path / "s.yaml", first_stage=[{"file": "bad.json", "count": 1}])
    assert main(["stages", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "bad.json: not a readable JSON file" in err and "\n" not in err

import json

import pytest
import yaml

from m2se.data.records import load_records
from m2se.sources.stages import MANIFEST, StageConfigError, build_stages


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
        ({"file": "built/absent.json", "count": 1}, r"no such file built/absent.json \(see docs/DATA.md\)"),
    ],
)
def test_config_errors_name_the_entry(task_files, tmp_path, entry, message):
    config = write_config(tmp_path / "s.yaml", first_stage=[entry])
    with pytest.raises(StageConfigError, match=rf"s.yaml: stages.first_stage\[0\]: {message}"):
        build_stages(config, tmp_path / "out")


def test_unreadable_inputs_are_one_line_errors_naming_the_file(task_files, tmp_path, capsys):
    from m2se.sources.cli import main

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


MSA = "built/first_stage_msa.json"
LAUGHS = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("seed: [1]\nstages: {}", "s.yaml: seed must be a whole number, got [1]"),
        (
            "stages: {first_stage: 5}",
            "s.yaml: stages.first_stage: expected a list of {file, count | fraction}",
        ),
        ("stages: {1: []}", "s.yaml: stage name 1 is not a plain file name"),
        ("stages: {../x: []}", "s.yaml: stage name '../x' is not a plain file name"),
        ("stages: {stages_manifest: []}", "s.yaml: stage name 'stages_manifest' is not a plain file name"),
        ("stages: {s: [{file: [a], count: 1}]}", "s.yaml: stages.s[0]: file and task must be strings"),
        (
            f"stages: {{s: [{{file: {MSA}, count: [1]}}]}}",
            "s.yaml: stages.s[0]: count must be a whole number",
        ),
        (f"stages: {{s: [{{file: {MSA}, count: .inf}}]}}", "s.yaml: stages.s[0].count is inf (not a finite"),
        (
            f"stages: {{s: [{{file: {MSA}, fraction: [1]}}]}}",
            "s.yaml: stages.s[0]: fraction must be a number",
        ),
        ("when: 2024-13-01\nstages: {}", "s.yaml: not valid YAML (month must be in 1..12)"),
        ("when: 2024-01-01\nstages: {}", "s.yaml: not plain JSON data (Object of type date is not JSON"),
        ("1: a\nstages: {}", "s.yaml: not plain JSON data ('<' not supported"),
        ("stages: {}\nx: " + "[" * 1000 + "]" * 1000, "s.yaml: not valid YAML (nested too deeply to parse)"),
        (LAUGHS + "stages: {}", "s.yaml: more than 100000 values"),
        ('stages: {s: []}\nx: "\\ud800"', "s.yaml: x has an unpaired UTF-16 surrogate"),
    ],
)
def test_configs_of_the_wrong_shape_are_one_line_errors(task_files, tmp_path, capsys, config, message):
    from m2se.sources.cli import main

    (tmp_path / "s.yaml").write_text(config)
    assert main(["stages", "--config", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"[" * 100_000, "not a readable JSON file (nested too deeply to parse"),
        (b'{"query": "q", "response": "r"}', "not a readable JSON file (expected a list of records)"),
        (b"[\xff]", "not a readable JSON file ('utf-8' codec can't decode byte 0xff"),
    ],
)
def test_task_files_that_are_no_json_list_are_one_line_errors(tmp_path, capsys, source, message):
    from m2se.sources.cli import main

    (tmp_path / "t.json").write_bytes(source)
    config = write_config(tmp_path / "s.yaml", s=[{"file": "t.json", "count": 1}])
    assert main(["stages", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 't.json'}: {message}") and len(err.strip().splitlines()) == 1


def test_nothing_is_written_unless_every_stage_can_be(task_files, tmp_path, capsys):
    from m2se.sources.cli import main

    twice = [{"file": MSA, "count": 3}, {"file": MSA, "count": 3}]  # records drawn twice: training drops them
    config = write_config(tmp_path / "s.yaml", a_stage=[{"file": MSA, "count": 3}], b_stage=twice)
    assert main(["stages", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: b_stage.json:") and "duplicate record" in err and ".tmp" not in err
    assert not list((tmp_path / "o").iterdir())

    config = write_config(
        tmp_path / "s.yaml", a_stage=[{"file": MSA, "count": 3}], b_stage=[{"file": MSA, "count": 1}]
    )
    (tmp_path / "o" / "b_stage.json").mkdir()
    assert main(["stages", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'o' / 'b_stage.json'}: is a folder, not a file\n"
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["b_stage.json"]

    (tmp_path / "file").write_text("")
    assert main(["stages", "--config", str(config), "--out", str(tmp_path / "file" / "o")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'file' / 'o'}: ")


@pytest.mark.parametrize("entries", [[], [{"file": "built/first_stage_msa.json", "count": 0}]])
def test_a_stage_left_without_records_is_refused_and_nothing_written(task_files, tmp_path, entries):
    config = write_config(
        tmp_path / "s.yaml",
        first_stage=[{"file": "built/first_stage_msa.json", "count": 3}],
        second_stage=entries,
    )
    with pytest.raises(StageConfigError, match="s.yaml: stages.second_stage: no records"):
        build_stages(config, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

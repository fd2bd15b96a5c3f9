"""Files and folders written whole: beside the target, then renamed; failures name the path."""

import errno

import pytest

from m2se.files import atomic_file, staged_dir


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    out = tmp_path / "adapter"
    with staged_dir(out) as staged:
        (staged / "adapter_config.json").write_text("{}")
        (staged / "audio.safetensors").write_text("old audio")
    with staged_dir(out) as staged:
        (staged / "adapter_config.json").write_text('{"r": 16}')
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json"]  # no stale audio file
    with pytest.raises(RuntimeError), staged_dir(out) as staged:
        (staged / "adapter_config.json").write_text("partial")
        raise RuntimeError("export failed half way")
    assert (out / "adapter_config.json").read_text() == '{"r": 16}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_atomic_file_names_the_path_of_a_failed_write(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(OSError, match="metrics.json"), atomic_file(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_leftovers_of_a_killed_writer_are_cleaned_by_the_next_write(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_text("old")
    dead = 2**22 + 12345  # beyond the usual pid range: no such process
    (tmp_path / f".last.ckpt.{dead}-0badc0de.tmp").write_text("half")
    folder = tmp_path / "adapter"
    (tmp_path / f".adapter.{dead}-0badc0de.old").mkdir()  # killed between the two renames
    (tmp_path / f".adapter.{dead}-0badc0de.old" / "adapter_config.json").write_text("{}")
    (tmp_path / f".adapter.{dead}-0badc0de.tmp").mkdir()
    with atomic_file(target) as tmp:
        tmp.write_text("new")
    with staged_dir(folder) as staged:
        (staged / "adapter_config.json").write_text('{"r": 8}')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "last.ckpt"]
    assert target.read_text() == "new" and (folder / "adapter_config.json").read_text() == '{"r": 8}'


def test_a_failed_write_names_the_target_not_its_temporary(tmp_path):
    target = tmp_path / "checkpoints" / "last.ckpt"
    (tmp_path / "checkpoints").write_text("a file where a folder should be")
    with pytest.raises(OSError, match=r"File exists: '.*/checkpoints'$"), atomic_file(target):
        pass
    (tmp_path / "checkpoints").unlink()
    full_disk = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".last.ckpt.1-abc.tmp"))
    with (
        pytest.raises(OSError, match=r"No space left on device: '.*/checkpoints/last.ckpt'$"),
        atomic_file(target),
    ):
        raise full_disk


def test_json_problem_names_depth_non_finite_numbers_and_surrogates():
    from m2se.files import MAX_JSON_DEPTH, json_problem

    assert json_problem({"query": "fine ☺", "score": 1.5, "tags": [1, {"a": None}]}) is None
    assert json_problem({"meta": {"score": float("nan")}}) == "meta.score is nan (not a finite number)"
    assert json_problem({"score": float("-inf")}) == "score is -inf (not a finite number)"
    assert json_problem({"query": "a\ud800b"}) == "query has an unpaired UTF-16 surrogate"
    assert "surrogate" in json_problem({"x\udfff": 1})
    deep: list = []
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = [deep]
    assert "nests deeper" in json_problem({"meta": deep})


def test_loads_turns_runaway_nesting_into_a_decode_error_and_dumps_refuses_nan(tmp_path):
    import json

    from m2se.files import dumps, loads, write_json

    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError):
        dumps({"f1": float("nan")})
    with pytest.raises(ValueError):
        write_json(tmp_path / "m.json", {"f1": float("inf")})
    assert not (tmp_path / "m.json").exists()
    write_json(tmp_path / "m.json", {"f1": None})
    assert (tmp_path / "m.json").read_text() == '{"f1": null}\n'


def test_every_json_writer_goes_through_m2se_files():
    """NaN and Infinity are not JSON: every writer uses m2se.files.dumps/write_json (allow_nan=False)."""
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "m2se"
    offenders = [
        f"{path.relative_to(package.parent)}:{n}"
        for path in package.rglob("*.py")
        if path.name != "files.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bjson\.dumps?\(", line)
    ]
    assert offenders == []


def test_loads_reports_integers_too_long_for_python_as_decode_errors():
    import json

    from m2se.files import loads
    from m2se.parsing import finite_number

    with pytest.raises(json.JSONDecodeError, match="digits"):
        loads("[" + "1" * 5000 + "]")
    assert not finite_number(10**400) and finite_number(10**300) and not finite_number(True)


def test_loads_refuses_a_key_given_twice():
    from m2se.files import loads

    assert loads('{"a": 1, "b": {"a": 2}}') == {"a": 1, "b": {"a": 2}}  # the same key in two objects is fine
    with pytest.raises(ValueError, match="duplicate key 'a'"):
        loads('{"a": 1, "a": 2}')

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

"""Checkpoint files: loaded without executing code, written whole or not at all, failures name the path."""

import errno
import os
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from m2se.model import checkpoints
from m2se.model.adapters import read_adapters
from m2se.model.audio import read_saved
from m2se.model.checkpoints import CheckpointError, SafeCheckpointIO, load_checkpoint


class Payload:
    """What a malicious checkpoint carries: unpickling it runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"m2se": {"stage": 1}, "state_dict": {}, "x": Payload(marker)}, path)
    return path, marker


def test_every_checkpoint_reader_refuses_code_and_names_the_file(evil):
    path, marker = evil
    readers = [load_checkpoint, read_adapters, read_saved, SafeCheckpointIO().load_checkpoint]
    for read in readers:
        with pytest.raises(
            CheckpointError, match=r"evil\.ckpt: refused: it holds a Python object \(posix\.system\)"
        ):
            read(path)
    assert not marker.exists()  # nothing ran


def test_unreadable_and_foreign_files_are_one_line_errors(tmp_path):
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")
    torch.save([1, 2], tmp_path / "list.ckpt")
    with pytest.raises(CheckpointError, match="list.ckpt: not a checkpoint"):
        load_checkpoint(tmp_path / "list.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="other.ckpt: not an m2se checkpoint"):
        read_adapters(tmp_path / "other.ckpt")
    with pytest.raises(FileNotFoundError, match="absent.ckpt"):
        load_checkpoint(tmp_path / "absent.ckpt")


def test_a_save_is_staged_beside_the_target_and_leaves_nothing_when_it_fails(tmp_path, monkeypatch):
    target = tmp_path / "checkpoints" / "last.ckpt"
    io = SafeCheckpointIO()
    io.save_checkpoint({"global_step": 1}, target)
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    written = []

    def dies_half_way(obj, f, *args, **kwargs):  # a kill or a full disk in the middle of a save
        written.append(f)
        Path(f).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match=r"No space left on device: '.*checkpoints/last.ckpt'"):
        io.save_checkpoint({"global_step": 2}, target)
    assert written[0].parent == target.parent  # staged on the same filesystem: the rename is atomic
    assert load_checkpoint(target)["global_step"] == 1  # the last good one is kept
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]  # no orphan
    assert list(system_tmp.iterdir()) == []


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    torch.save({"rng": checkpoints.rng_state()}, tmp_path / "rng.ckpt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    checkpoints.set_rng_state(load_checkpoint(tmp_path / "rng.ckpt")["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(again[0], expected[0]) and np.array_equal(again[1], expected[1])
    assert again[2] == expected[2]


# -- malformed checkpoints and adapter folders: every reader ends with one line naming the file ------


@pytest.fixture(scope="module")
def real(tmp_path_factory, tiny_model_dir, demo_dir):
    from hydra import compose, initialize_config_dir

    from train import train

    out = tmp_path_factory.mktemp("real")
    conf = Path(__file__).resolve().parents[2] / "conf"
    paths = [f"model.path={tiny_model_dir}", f"data.data_dir={demo_dir}", f"output_dir={out}"]
    with initialize_config_dir(str(conf), version_base="1.3"):
        cfg = compose(
            "train", overrides=["experiment=demo", "trainer.max_steps=2", "data.num_workers=0", *paths]
        )
    train(cfg)
    return out


def variant(real, tmp_path, name, change):
    checkpoint = load_checkpoint(real / "checkpoints/last.ckpt")
    change(checkpoint)
    torch.save(checkpoint, tmp_path / name)
    return tmp_path / name


def first_tensor(checkpoint):
    return next(iter(checkpoint["state_dict"]))


BAD_CHECKPOINTS = {
    "plain.ckpt": (lambda c: c.clear() or c.update(a=1), "not an m2se checkpoint"),
    "m2se_empty.ckpt": (lambda c: c.update(m2se={}), "'m2se' has no stage"),
    "no_state.ckpt": (lambda c: c.pop("state_dict"), r"state_dict\): expected a name -> tensor map"),
    "nan.ckpt": (lambda c: c["state_dict"][first_tensor(c)].fill_(float("nan")), "holds NaN/inf"),
    "bad_merged.ckpt": (lambda c: c["m2se"].update(merged=[1]), "merged adapter 0 is not"),
}


@pytest.mark.parametrize("name", list(BAD_CHECKPOINTS))
def test_malformed_checkpoints_are_named_by_every_reader(real, tmp_path, name):
    change, message = BAD_CHECKPOINTS[name]
    path = variant(real, tmp_path, name, change)
    for read in (read_adapters, read_saved, SafeCheckpointIO().load_checkpoint):
        with pytest.raises(CheckpointError, match=f"{name}.*{message}"):
            read(path)


def test_resume_wants_a_training_checkpoint(real, tmp_path):
    weights = variant(real, tmp_path, "weights.ckpt", lambda c: c.pop("loops"))
    with pytest.raises(CheckpointError, match="weights.ckpt: holds weights but no training state"):
        SafeCheckpointIO().load_checkpoint(weights)
    with pytest.raises(CheckpointError, match="adapter: a folder; resume= takes a training checkpoint"):
        SafeCheckpointIO().load_checkpoint(real / "adapter")


def test_adapters_that_do_not_fit_the_model_are_named(real, tmp_path, tiny_model_dir):
    from m2se.data import internvl
    from m2se.model.internvl import InternVL
    from m2se.model.module import M2SEModule

    def wrong_shape(c):
        name = first_tensor(c)
        c["state_dict"][name] = torch.zeros(3, 3)

    def unknown_module(c):
        c["state_dict"]["model.base_model.model.model.nonexistent.lora_A.default.weight"] = torch.zeros(8, 8)

    for name, change, message in [
        ("wrong_shape.ckpt", wrong_shape, "does not fit this model .*size mismatch"),
        ("unknown.ckpt", unknown_module, "does not fit this model .*modules this model lacks"),
    ]:
        path = variant(real, tmp_path, name, change)
        with pytest.raises(CheckpointError, match=f"{name}: its LoRA {message}"):
            M2SEModule(
                InternVL(str(tiny_model_dir)), internvl.from_pretrained(tiny_model_dir), init_from=str(path)
            )


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("list_json", lambda d: (d / "adapter_config.json").write_text("[1, 2]"), "expected a JSON object"),
        ("bad_json", lambda d: (d / "adapter_config.json").write_text("{'r': 8"), "not readable JSON"),
        ("bad_lora", lambda d: (d / "adapter_config.json").write_text('{"r": "abc"}'), "invalid LoRA config"),
        (
            "corrupt",
            lambda d: (d / "adapter_model.safetensors").write_bytes(b"\x00" * 64),
            "not readable safetensors",
        ),
    ],
)
def test_malformed_adapter_folders_are_named(real, tmp_path, name, damage, message):
    import shutil

    folder = tmp_path / name
    shutil.copytree(real / "adapter", folder)
    damage(folder)
    with pytest.raises(CheckpointError, match=f"{name}.*{message}"):
        read_adapters(folder)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(data=st.one_of(st.binary(max_size=200), st.binary(max_size=60).map(lambda b: b"\x80" + b)))
def test_any_bytes_as_a_checkpoint_are_one_checkpoint_error(tmp_path_factory, data):
    # Bytes that are no pickle reached the unpickler's lookups: KeyError/IndexError tracebacks from ckpt=.
    path = tmp_path_factory.mktemp("bytes") / "x.ckpt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="x.ckpt: "):
        load_checkpoint(path)

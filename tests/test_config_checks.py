"""A wrong checkpoint path or mixture stops train.py, evaluate.py and predict.py before anything loads."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import evaluate
import predict
import train
from m2se.cli import run

CONF = Path(__file__).resolve().parents[1] / "conf"
ENTRIES = {"train": train.train, "evaluate": evaluate.evaluate, "predict": predict.predict}


@pytest.mark.parametrize(
    ("entry", "override", "message"),
    [
        ("train", "ckpt=/nowhere/last.ckpt", "ckpt=/nowhere/last.ckpt: no such checkpoint or adapter folder"),
        ("train", "resume=/nowhere.ckpt", "resume=/nowhere.ckpt: no such checkpoint"),
        ("train", "+data.mixtures.first.nope=1", "mixture 'first': unknown task 'nope'"),
        ("train", "data.mixtures.second.erc=-1", "mixture 'second'"),
        ("train", "data.mixture=third", "unknown mixture 'third' (configured: first, second)"),
        ("evaluate", "ckpt=/nowhere/adapter", "ckpt=/nowhere/adapter: no such checkpoint"),
        ("predict", "ckpt=/nowhere/adapter", "ckpt=/nowhere/adapter: no such checkpoint"),
        ("evaluate", "ckpt=", "ckpt= is empty"),
        ("predict", "ckpt=''", "ckpt= is empty"),
        ("train", "ckpt=' '", "ckpt= is empty"),
        ("predict", "data.batch_size=-1", "data.batch_size must be an integer >= 1, got -1"),
        ("evaluate", "data.batch_size=0", "data.batch_size must be an integer >= 1, got 0"),
        ("predict", "data.batch_size=abc", "data.batch_size must be an integer >= 1, got 'abc'"),
        ("train", "data.batch_size=1.5", "data.batch_size must be an integer >= 1, got 1.5"),
        ("train", "data.num_workers=-1", "data.num_workers must be an integer >= 0"),
        ("train", "data.num_batches=0", "data.num_batches must be an integer >= 1 (or null)"),
        ("train", "data.mixtures=null", "data.mixtures must be a mapping"),
        (
            "train",
            "data.video_resize=nearest",
            "data.video_resize must be one of decoder, pil; got 'nearest'",
        ),
        ("evaluate", "data.video_backend=ffmpeg", "data.video_backend must be one of auto, decord, pyav"),
        ("predict", "data.processor.pixels=float16", "data.processor.pixels must be one of float32, uint8"),
        (
            "train",
            "data.processor.over_budget=drop",
            "data.processor.over_budget must be one of truncate, skip",
        ),
        ("train", "data.on_media_error=ignore", "data.on_media_error must be one of skip, raise"),
        ("train", "data.num_frames=0", "data.num_frames must be an integer >= 1, got 0"),
        ("evaluate", "data.max_tiles=abc", "data.max_tiles must be an integer >= 1, got 'abc'"),
        (
            "train",
            "module.load.dtype=bf8",
            "module.load.dtype must be one of auto, float32, bfloat16, float16",
        ),
        ("train", "module.load.quantization=8bit", "module.load.quantization must be one of none, 4bit"),
        ("train", "+module.load.precision=high", "module.load: "),
    ],
)
def test_caught_before_data_or_model_load(entry, override, message, tmp_path, monkeypatch, capsys):
    module = {"train": train, "evaluate": evaluate, "predict": predict}[entry]
    monkeypatch.setattr(module, "build_data", lambda *a, **k: pytest.fail("data loaded before the check"))
    monkeypatch.setattr(module, "prepare_demo", lambda *a, **k: pytest.fail("demo built before the check"))
    extra = ["inputs=x.mp4", "task=erc"] if entry == "predict" else []
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(entry, overrides=["experiment=demo", f"output_dir={tmp_path}", *extra, override])
    with pytest.raises(SystemExit) as stop:
        run(ENTRIES[entry], cfg)
    assert str(stop.value.code).startswith("error: ") and message in str(stop.value.code)


@pytest.mark.parametrize("entry", ["train", "evaluate", "predict"])
@pytest.mark.parametrize("recorded", ["m2se.model.qwen_vl.QwenVL", None])
def test_a_ckpt_of_another_family_is_refused_before_work(entry, recorded, tmp_path, monkeypatch):
    """An adapter records its family (m2se_backbone.json); one that records none is InternVL's (made
    before a second family existed). With resume= the same."""
    module = {"train": train, "evaluate": evaluate, "predict": predict}[entry]
    monkeypatch.setattr(module, "build_data", lambda *a, **k: pytest.fail("data loaded before the check"))
    monkeypatch.setattr(module, "prepare_demo", lambda *a, **k: pytest.fail("demo built before the check"))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    if recorded:
        (adapter / "m2se_backbone.json").write_text(json.dumps({"backbone": recorded}))
    family = "model=tiny" if recorded else "model=tiny_qwen"
    extra = ["inputs=x.mp4", "task=erc"] if entry == "predict" else []
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            entry, overrides=["experiment=demo", family, f"output_dir={tmp_path}", f"ckpt={adapter}", *extra]
        )
    with pytest.raises(SystemExit) as stop:
        run(ENTRIES[entry], cfg)
    trained_on = recorded or "m2se.model.internvl.InternVL"
    assert f"trained on the {trained_on} family" in str(stop.value.code) and "(model=...)" in str(
        stop.value.code
    )


def test_resuming_a_checkpoint_of_another_family_is_refused_before_work(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(train, "build_data", lambda *a, **k: pytest.fail("data loaded before the check"))
    monkeypatch.setattr(train, "prepare_demo", lambda *a, **k: pytest.fail("demo built before the check"))
    saved = {"stage": 1, "merged": [], "lora_config": {}, "backbone": "m2se.model.internvl.InternVL"}
    torch.save({"m2se": saved, "state_dict": {}}, tmp_path / "last.ckpt")
    with initialize_config_dir(str(CONF), version_base="1.3"):
        overrides = [
            "experiment=demo",
            "model=tiny_qwen",
            f"output_dir={tmp_path}",
            f"resume={tmp_path / 'last.ckpt'}",
        ]
        cfg = compose("train", overrides=overrides)
    with pytest.raises(SystemExit) as stop:
        run(ENTRIES["train"], cfg)
    assert (
        "trained on the m2se.model.internvl.InternVL family, but model.backbone is m2se.model.qwen_vl.QwenVL"
        in str(stop.value.code)
    )

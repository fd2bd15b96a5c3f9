"""A wrong checkpoint path or mixture stops train.py, evaluate.py and predict.py before anything loads."""

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

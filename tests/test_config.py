"""Every stage × data config composes; the demo experiment instantiates the real DataModule."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from m2se.data.datamodule import MultiTaskDataModule

CONF = Path(__file__).resolve().parents[1] / "conf"


def configs(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("stage", configs("stage"))
@pytest.mark.parametrize("data", configs("data"))
def test_stage_and_data_compose(stage, data):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"stage={stage}", f"data={data}"])
    assert cfg.stage == stage and cfg.data.mixture == stage
    assert cfg.data.mixture in cfg.data.mixtures
    assert cfg.data._target_ == "m2se.data.datamodule.MultiTaskDataModule"


def test_every_config_starts_with_its_command():
    for path in CONF.rglob("*.yaml"):
        lines = [line for line in path.read_text().splitlines() if not line.startswith("# @package")]
        assert lines[0].startswith("# python "), path


def test_demo_experiment_instantiates(tiny_model_dir, demo_dir):
    overrides = ["experiment=demo", f"model.path={tiny_model_dir}", f"data.data_dir={demo_dir}"]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    dm = instantiate(cfg.data, _convert_="all")
    assert isinstance(dm, MultiTaskDataModule)
    dm.setup("fit")
    assert dm.mixture == "first" and set(dm.test_records) == {"msa", "mer", "erc", "fer", "eri", "ecpe"}
    assert dm.processor.tile_size == 56 and dm.media.num_frames == cfg.data.num_frames


def test_train_entry_runs_the_data_pipeline(tiny_model_dir, demo_dir, capsys):
    from train import train

    overrides = [
        "experiment=demo",
        "stage=second",
        f"model.path={tiny_model_dir}",
        f"data.data_dir={demo_dir}",
    ]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    dm = train(cfg)
    assert dm.mixture == "second"
    assert "stage second: mixture 'second'" in capsys.readouterr().out

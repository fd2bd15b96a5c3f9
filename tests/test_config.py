"""Every config composes; each starts with its command; the demo experiment instantiates."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from m2se.cli import build_data
from m2se.data.datamodule import MultiTaskDataModule

CONF = Path(__file__).resolve().parents[1] / "conf"
MIXTURE = {"first": "first", "second": "second", "curriculum": "first"}


def configs(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def composed(*overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("stage", configs("stage"))
@pytest.mark.parametrize("data", configs("data"))
def test_stage_and_data_compose(stage, data):
    cfg = composed(f"stage={stage}", f"data={data}")
    assert cfg.stage == stage and cfg.data.mixture == MIXTURE[stage]
    assert cfg.module.stage == (2 if stage == "second" else 1)
    assert cfg.data.mixture in cfg.data.mixtures
    assert ("curriculum" in cfg.callbacks) == (stage == "curriculum")


@pytest.mark.parametrize("experiment", [[], ["experiment=demo"]])
def test_curriculum_spans_both_stages_whatever_the_trainer(experiment):
    cfg = composed("stage=curriculum", *experiment)
    assert cfg.trainer.max_epochs == 4 and cfg.trainer.reload_dataloaders_every_n_epochs == 1
    assert cfg.callbacks.curriculum.switch_epoch == 2 < cfg.trainer.max_epochs


@pytest.mark.parametrize("group", ["model", "trainer", "logger", "callbacks"])
def test_every_choice_composes(group):
    for choice in configs(group):
        cfg = composed(f"{group}={choice}")
        assert cfg[group] is not None


def test_the_model_config_owns_the_backbone_its_processor_and_what_it_hears():
    for choice in configs("model"):
        cfg = composed(f"model={choice}")
        assert cfg.model.backbone._target_ and cfg.model.processor._target_
        assert cfg.model.backbone.path == cfg.model.processor.path == cfg.model.path
        assert cfg.model.audio.encoder is None  # conf/model/audio/none.yaml, not a copy in every file
        assert "\naudio:" not in (CONF / "model" / f"{choice}.yaml").read_text()
        assert "audio" not in cfg.module and "model_path" not in cfg.module
    for choice in configs("data"):
        assert "_target_" not in composed(f"data={choice}").data.processor  # prompt options only
    with initialize_config_dir(str(CONF), version_base="1.3"):
        evaluation = compose("evaluate")
    assert evaluation.module._target_ == composed().module._target_  # both entry points build it alike


def test_defaults_follow_emoverse():
    cfg = composed()
    assert cfg.model.path == "OpenGVLab/InternVL2-4B"
    assert (cfg.module.lora.r, cfg.module.lora.alpha, cfg.module.lora.dropout) == (8, 32, 0.05)
    assert (cfg.module.optimizer.lr, cfg.module.optimizer.weight_decay) == (1e-4, 0.1)
    assert cfg.module.optimizer.warmup_ratio == 0.05
    assert (cfg.trainer.accumulate_grad_batches, cfg.trainer.gradient_clip_val, cfg.trainer.max_epochs) == (
        8,
        1.0,
        2,
    )
    assert cfg.trainer.use_distributed_sampler is False
    assert cfg.data.val_fraction == 0.01 and cfg.data.num_frames == 8 and cfg.data.max_tiles == 12


def test_every_config_starts_with_its_command():
    for path in CONF.rglob("*.yaml"):
        lines = [line for line in path.read_text().splitlines() if not line.startswith("# @package")]
        assert lines[0].startswith("# python "), path


def test_demo_experiment_instantiates_the_data(tiny_model_dir, demo_dir):
    cfg = composed("experiment=demo", f"model.path={tiny_model_dir}", f"data.data_dir={demo_dir}")
    assert cfg.prepare_demo and cfg.trainer.accelerator == "cpu"
    backbone, dm = build_data(cfg)  # as train.py and evaluate.py build it
    assert isinstance(dm, MultiTaskDataModule) and backbone.path == cfg.model.path == str(tiny_model_dir)
    dm.setup("fit")
    assert dm.mixture == "first" and set(dm.test_records) == {"msa", "mer", "erc", "fer", "eri", "ecpe"}
    assert dm.processor.tile_size == 56 and dm.media.num_frames == cfg.data.num_frames


def test_prepare_demo_leaves_a_complete_data_folder_alone(tmp_path, tiny_model_dir):
    from m2se.cli import prepare_demo

    for name in ("first_stage.json", "second_stage.json"):
        (tmp_path / name).write_text("[]")
    cfg = composed("experiment=demo", f"model.path={tiny_model_dir}", f"data.data_dir={tmp_path}")
    prepare_demo(cfg)
    assert (tmp_path / "first_stage.json").read_text() == "[]" and not (tmp_path / "media").exists()
    audio = composed(
        "experiment=demo_audio",
        f"model.path={tiny_model_dir}",
        f"data.data_dir={tmp_path}",
        f"model.audio.encoder={tmp_path / 'hubert'}",
    )
    # audio_stage.json is missing, but the folder is a user's, not the demo's: nothing is overwritten.
    with pytest.raises(FileNotFoundError, match="audio_stage.json: missing, and .* is not a demo folder"):
        prepare_demo(audio)
    assert (tmp_path / "first_stage.json").read_text() == "[]"
    (tmp_path / ".m2se-demo").write_text("")  # a demo folder of an older release: completed
    prepare_demo(audio)
    assert (tmp_path / "audio_stage.json").is_file() and (tmp_path / "hubert/config.json").is_file()

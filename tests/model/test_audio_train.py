"""experiment=demo_audio end to end: the demo's mer2023 clips heard while training, saved, reloaded."""

import csv
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from m2se.audio_settings import AudioSettings
from m2se.data import internvl
from m2se.model.audio import evaluated_settings, saved_settings
from m2se.model.internvl import InternVL
from m2se.model.module import M2SEModule
from m2se.model.tiny import build_tiny_audio_encoder
from train import train

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_demo_audio_config_composes_for_training_and_evaluation():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=demo_audio"])
        evaluation = compose("evaluate", overrides=["experiment=demo_audio", "task=mer2023"])
    # One owner: model.audio (conf/model/audio/), which processor and module both read.
    assert "audio" not in cfg.module and "audio" not in cfg.data.processor
    assert cfg.model.audio.encoder == "demo_out/tiny-hubert"
    assert list(cfg.model.audio.tasks) == ["mer2023"] and cfg.model.path == "demo_out/tiny-internvl"
    assert set(cfg.data.mixtures.first) == {"msa", "mer", "fer", "mer2023"}
    assert (
        "mer2023" in evaluation.data.test_sources and evaluation.model.audio.encoder == "demo_out/tiny-hubert"
    )
    with initialize_config_dir(str(CONF), version_base="1.3"):
        plain = compose("train", overrides=["experiment=demo"])
    assert plain.model.audio.encoder is None and not plain.model.audio.features  # off unless asked for


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, demo_dir):
    out = tmp_path_factory.mktemp("audio_run")
    encoder = build_tiny_audio_encoder(out / "tiny-hubert")
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=demo_audio",
                f"model.path={tiny_model_dir}",
                f"model.audio.encoder={encoder}",
                f"data.data_dir={demo_dir}",
                f"output_dir={out}",
                "~data.mixtures.first",
                "+data.mixtures.first={mer2023: 1, msa: 1}",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=4",
                "trainer.limit_val_batches=2",
                "trainer.log_every_n_steps=1",
                "data.num_workers=0",
                "data.batch_size=4",
                "module.val_generate=4",
            ],
        )
    trainer, module, datamodule = train(cfg)
    return out, trainer, module, datamodule


def test_training_hears_the_clips_and_saves_the_projector(run, tiny_model_dir):
    out, trainer, module, datamodule = run
    assert trainer.global_step == 4 and not datamodule.dropped  # every mer2023 clip had sound
    checkpoint = torch.load(out / "checkpoints/last.ckpt", weights_only=False)
    assert "extra_tokens.audio.projector.weight" in checkpoint["state_dict"]
    assert checkpoint["m2se"]["audio"]["tasks"] == ["mer2023"]
    trained = checkpoint["state_dict"]["extra_tokens.audio.projector.weight"]
    assert saved_settings(out / "adapter")["encoder"] == module.extra_tokens.settings.encoder
    # Evaluation builds the module from the adapter folder alone: the settings and projector come with it.
    audio = evaluated_settings(AudioSettings(), str(out / "adapter"))
    processor = internvl.from_pretrained(tiny_model_dir, audio=audio)
    loaded = M2SEModule(InternVL(str(tiny_model_dir)), processor, init_from=str(out / "adapter"))
    assert torch.equal(loaded.extra_tokens.audio.projector.weight, trained)
    with open(out / "csv" / "metrics.csv") as f:
        logged = list(csv.DictReader(f))
    assert any(row.get("train/mer2023/loss") for row in logged)

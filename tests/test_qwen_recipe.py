"""The whole recipe on the second family, from config alone (``model=tiny_qwen``): stage one, stage two
on stage one's adapter, an adapter folder that PEFT loads on the plain base, export, and evaluation of
the export giving the adapter's own answers and metrics."""

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from peft import PeftModel
from transformers import AutoModelForImageTextToText

from evaluate import evaluate
from m2se.export import main as export
from train import train

CONF = Path(__file__).resolve().parents[1] / "conf"


def qwen(config: str, out: Path, tiny_qwen_dir, demo_dir, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(
            config,
            overrides=[
                "experiment=demo",
                "model=tiny_qwen",
                f"model.path={tiny_qwen_dir}",
                f"data.data_dir={demo_dir}",
                f"output_dir={out}",
                *overrides,
            ],
        )


@pytest.fixture(scope="module")
def stages(tmp_path_factory, tiny_qwen_dir, demo_dir) -> Path:
    root = tmp_path_factory.mktemp("qwen")
    short = ["data.num_batches=8", "trainer.limit_val_batches=1", "logger=none"]
    adapter = root / "first" / "adapter"
    for stage, extra in (("first", []), ("second", [f"ckpt={adapter}"])):
        cfg = qwen("train", root / stage, tiny_qwen_dir, demo_dir, f"stage={stage}", *short, *extra)
        train(cfg)
        (root / stage / ".hydra").mkdir()
        OmegaConf.save(cfg, root / stage / ".hydra" / "config.yaml")  # as Hydra writes the run's config
    return root


def test_stage_two_stacks_both_stages_in_one_peft_folder_on_the_plain_base(stages, tiny_qwen_dir):
    folder = stages / "second" / "adapter"
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_qwen_dir)
    assert "merger" in config["target_modules"] and "language_model" in config["target_modules"]
    base = AutoModelForImageTextToText.from_pretrained(tiny_qwen_dir)
    plain = base.lm_head.weight.clone()
    model = PeftModel.from_pretrained(base, folder)
    lora = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora and torch.equal(model.base_model.model.lm_head.weight, plain)


def test_pictures_of_another_size_than_trained_are_warned_about(stages, tiny_qwen_dir, demo_dir):
    adapter = stages / "second" / "adapter"
    assert json.loads((adapter / "m2se_backbone.json").read_text()) == {
        "backbone": "m2se.model.qwen_vl.QwenVL",
        "tile_size": 56,
    }
    overrides = ("task=msa", f"ckpt={adapter}", "model.processor.frame_size=112")
    cfg = qwen("evaluate", stages / "eval_112", tiny_qwen_dir, demo_dir, *overrides)
    with pytest.warns(UserWarning, match="was trained on 56-px pictures; these are 112 px"):
        evaluate(cfg)


def test_the_export_evaluates_to_the_adapters_answers(stages, tiny_qwen_dir, demo_dir, capsys):
    adapter, out = stages / "second" / "adapter", stages / "export"
    assert export([f"ckpt={adapter}", f"out={out}", "dtype=fp32"]) == 0
    record = json.loads((out / "m2se_export.json").read_text())
    assert record["backbone"] == "m2se.model.qwen_vl.QwenVL"
    assert record["model_processor"] == {"frame_size": 56, "frames_per_second": 2.0}
    assert (out / "preprocessor_config.json").read_bytes() == (
        tiny_qwen_dir / "preprocessor_config.json"
    ).read_bytes()
    card = (out / "README.md").read_text()
    assert "tags: [m2se, qwen2_5_vl," in card and "tile size" not in card and "frame_size | 56" in card
    results = {}
    for name, ckpt in (("adapter", adapter), ("export", out)):
        cfg = qwen("evaluate", stages / f"eval_{name}", tiny_qwen_dir, demo_dir, "task=msa", f"ckpt={ckpt}")
        results[name] = evaluate(cfg)["msa"]
    answers = {name: [row.response for row in result.rows] for name, result in results.items()}
    assert answers["adapter"] == answers["export"]
    assert results["adapter"].metrics == results["export"].metrics
    assert export([f"ckpt={adapter}", f"out={stages / 'original'}", "format=original"]) == 1
    assert "has no original InternVL layout (use format=native)" in capsys.readouterr().err
    (adapter.parent / ".hydra" / "config.yaml").unlink()  # the adapter folder alone still knows its family
    assert export([f"ckpt={adapter}", f"out={stages / 'alone'}", "dtype=fp32"]) == 0
    assert json.loads((stages / "alone" / "m2se_export.json").read_text())["backbone"] == record["backbone"]
    internvl = qwen("evaluate", stages / "eval_wrong", tiny_qwen_dir, demo_dir, "task=msa", f"ckpt={out}")
    internvl.model.backbone._target_ = "m2se.model.internvl.InternVL"
    with pytest.raises(ValueError, match="give the model config it was trained with"):
        evaluate(internvl)
    internvl.ckpt = str(adapter)
    with pytest.raises(
        ValueError, match=r"trained on the m2se.model.qwen_vl.QwenVL family, but model.backbone is"
    ):
        evaluate(internvl)

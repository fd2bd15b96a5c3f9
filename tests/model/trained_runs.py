"""Two training runs on the tiny model as train.py leaves them, without training: Hydra run folders
(``.hydra/config.yaml`` composed from conf/ as train.py composes it), random LoRA adapters as if
trained, a data manifest and an evaluate.py output, for the export tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from m2se.model.adapters import Adapter, save_adapter
from m2se.model.internvl import PARTS, load_base
from m2se.model.lora import LoraSettings, add_lora

CONF = Path(__file__).resolve().parents[2] / "conf"
# Stage one and two both train the projector in full beside the LoRA on the language model.
LORA = LoraSettings(parts=["language_model"], trainable_parts=["projector"])
MANIFEST = {
    "seed": 7,
    "config": {},
    "sources": {"msa_train.json": {"records": 12, "sha256": "ab" * 32}},
    "stages": {"first_stage": {"file": "first_stage.json", "records": 9, "sha256": "cd" * 32, "tasks": {}}},
}
METRICS = {"erc": {"count": 40, "accuracy": 0.625, "f1_weighted": 0.5, "unparseable": 1, "parse": "exact"}}


def random_lora(base, seed: int, settings: LoraSettings = LORA):
    """``base`` with a LoRA (and full-trained parts) of random weights, as if trained: B is not zero."""
    model = add_lora(base, settings, PARTS)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    return model


def write_run(folder: Path, overrides: list[str]) -> None:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, folder / ".hydra" / "config.yaml")


def write_trained_runs(root: Path, model_dir: Path) -> Path:
    """ROOT/runs/first/adapter (stage one) and ROOT/runs/second/adapter (stage two from it, both stages
    stacked), each with its run config; ROOT/data/stages_manifest.json; ROOT/eval, an evaluation of the
    second adapter. Returns ROOT."""
    first = random_lora(load_base(model_dir), seed=1)
    stage_one = Adapter.of(first)
    second = random_lora(first.merge_and_unload(), seed=2)
    runs = root / "runs"
    save_adapter([stage_one], runs / "first" / "adapter", str(model_dir))
    save_adapter([stage_one, Adapter.of(second)], runs / "second" / "adapter", str(model_dir))
    common = ["experiment=demo", f"model.path={model_dir}", f"data.data_dir={root / 'data'}"]
    common += ["module.lora.parts=[language_model]", "module.lora.trainable_parts=[projector]"]
    write_run(runs / "first", [*common, "stage=first"])
    write_run(runs / "second", [*common, "stage=second", f"ckpt={runs / 'first' / 'adapter'}"])
    (root / "data").mkdir()
    (root / "data" / "stages_manifest.json").write_text(json.dumps(MANIFEST))
    (root / "eval" / ".hydra").mkdir(parents=True)
    (root / "eval" / "metrics.json").write_text(json.dumps(METRICS))
    OmegaConf.save({"ckpt": str(runs / "second" / "adapter")}, root / "eval" / ".hydra" / "config.yaml")
    return root

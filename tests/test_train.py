"""train.py end to end on the tiny model and the demo data: stages, ckpt, resume, curriculum, adapters."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from peft import PeftModel
from transformers import InternVLForConditionalGeneration

from m2se.tasks import TASKS
from train import train

CONF = Path(__file__).resolve().parents[1] / "conf"
FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=6",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
    "data.num_workers=0",
    "data.batch_size=4",
]


def run(out: Path, tiny_model_dir, demo_dir, *overrides):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=demo",
                f"model.path={tiny_model_dir}",
                f"data.data_dir={demo_dir}",
                f"output_dir={out}",
                *FAST,
                *overrides,
            ],
        )
    return train(cfg)


def metrics(out: Path) -> list[dict]:
    with open(out / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def column(rows, key):
    return [float(r[key]) for r in rows if r.get(key)]


@pytest.fixture(scope="module")
def first(tmp_path_factory, tiny_model_dir, demo_dir):
    out = tmp_path_factory.mktemp("first")
    trainer, module, _ = run(out, tiny_model_dir, demo_dir, "stage=first")
    return out, trainer, module


def test_stage_one_leaves_checkpoint_adapter_and_metrics(first):
    out, trainer, module = first
    assert (out / "checkpoints/last.ckpt").is_file() and (out / "adapter/adapter_config.json").is_file()
    assert json.loads((out / "versions.json").read_text())["packages"]["torch"]
    checkpoint = torch.load(out / "checkpoints/last.ckpt", weights_only=True)
    trained = {n for n, p in module.named_parameters() if p.requires_grad}
    assert set(checkpoint["state_dict"]) == trained  # only what trains; the base stays out
    assert checkpoint["m2se"]["stage"] == 1 and checkpoint["m2se"]["merged"] == []
    rows = metrics(out)
    assert set(column(rows, "train/stage")) == {1.0} and column(rows, "train/loss")
    assert column(rows, "val/loss") and column(rows, "train/lr")
    assert column(rows, "val/msa/accuracy") and column(rows, "val/msa/unparseable")  # generated in validation
    assert not any(k.startswith("validate/") for k in rows[0])  # no rows stepped by validation batches
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(steps)
    tasks = {
        k.split("/")[1]
        for r in rows
        for k, v in r.items()
        if v and k.startswith("train/") and k.endswith("/loss")
    }
    assert tasks - {"loss"} <= {"msa", "mer", "fer"}
    assert any(k.startswith("val/") and k.endswith("/loss") and k != "val/loss" for k in rows[0])


@pytest.mark.parametrize("source", ["checkpoints/last.ckpt", "adapter"])
def test_stage_two_starts_from_stage_one(first, tiny_model_dir, demo_dir, tmp_path, source):
    stage_one, _, _ = first
    trainer, module, dm = run(
        tmp_path, tiny_model_dir, demo_dir, "stage=second", f"ckpt={stage_one / source}"
    )
    assert (
        trainer.global_step == 6 and module.stage == 2 and len(module.merged) == 1 and dm.mixture == "second"
    )
    assert set(column(metrics(tmp_path), "train/stage")) == {2.0}
    # The stage-two folder holds both stages and loads on the original base as plain PEFT.
    rng = np.random.default_rng(0)
    batch = dm.processor.collate(
        [
            dm.processor(
                TASKS["erc"].query("Hi ."),
                "Joy.",
                videos=[rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)],
            )
        ]
    )
    # In float64 only one thing separates the two: stage one merged into float32 weights during training
    # (2**-24 relative rounding), which moves these logits by ~3e-6; 1e-4 leaves a 30x margin and is
    # far below what a lost or mis-scaled stage changes (> 1e-3, test_adapters).
    batch = {k: v.double() if torch.is_floating_point(v) else v for k, v in batch.items()}
    with torch.no_grad():
        reference = module.model.double().eval()(**batch).logits
        base = InternVLForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float64)
        plain = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
        torch.testing.assert_close(plain(**batch).logits, reference, atol=1e-4, rtol=0)


def test_stage_two_needs_a_checkpoint(tiny_model_dir, demo_dir, tmp_path):
    with pytest.raises(ValueError, match="stage=second needs ckpt=PATH"):
        run(tmp_path, tiny_model_dir, demo_dir, "stage=second")


def test_curriculum_switches_at_the_step_and_resumes_after_it(tiny_model_dir, demo_dir, tmp_path):
    switch = [
        "stage=curriculum",
        "callbacks.curriculum.switch_epoch=null",
        "callbacks.curriculum.switch_step=4",
        "trainer.limit_train_batches=null",
        "trainer.max_epochs=null",
    ]
    out = tmp_path / "run"
    trainer, module, dm = run(out, tiny_model_dir, demo_dir, *switch, "trainer.max_steps=7")
    assert module.stage == 2 and len(module.merged) == 1 and dm.mixture == "second"
    assert (out / "adapter_stage1/adapter_config.json").is_file()
    rows = [r for r in metrics(out) if r.get("train/stage")]
    stage_by_step = {int(r["step"]): float(r["train/stage"]) for r in rows}
    assert [stage_by_step[s] for s in sorted(stage_by_step)] == [1.0] * 4 + [2.0] * 3
    task_rows = [r for r in metrics(out) if any(v for k, v in r.items() if k.count("/") == 2)]
    second = {"msa", "eri", "erc", "ecpe"}
    tasks_at = {
        int(r["step"]): {k.split("/")[1] for k, v in r.items() if v and k.count("/") == 2} for r in task_rows
    }
    assert all(tasks <= second for step, tasks in tasks_at.items() if step >= 4)
    assert any(tasks - second for step, tasks in tasks_at.items() if step < 4)  # fer/mer before the switch
    drawn = dm.sampler.batches_per_task
    assert sum(n for k, n in drawn.items() if k.startswith("first:")) == 4  # exact despite prefetching

    resumed_out = tmp_path / "resumed"
    trainer, module, dm = run(
        resumed_out,
        tiny_model_dir,
        demo_dir,
        *switch,
        "trainer.max_steps=10",
        f"resume={out / 'checkpoints/last.ckpt'}",
    )
    assert trainer.global_step == 10 and module.stage == 2 and len(module.merged) == 1
    assert dm.mixture == "second"
    assert set(column(metrics(resumed_out), "train/stage")) == {2.0}


def test_tiny_model_learns_sentiment_from_pixels(tiny_model_dir, demo_dir, tmp_path):
    """A few dozen steps on msa alone: the loss falls and greedy answers beat chance on held-out clips."""
    msa_only = [
        "~data.mixtures",
        "+data.mixtures={first: {msa: 1}, second: {msa: 1}}",
        "data.batch_size=8",
        "trainer.limit_train_batches=null",
        "trainer.max_epochs=null",
        "trainer.max_steps=50",
        "trainer.limit_val_batches=null",
    ]
    trainer, module, dm = run(tmp_path, tiny_model_dir, demo_dir, *msa_only)
    rows = metrics(tmp_path)
    losses = column(rows, "train/loss")
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 2
    dm.setup("test")
    loader = dm.test_dataloader()[list(dm.test_records).index("msa")]
    module.eval()
    correct = total = 0
    for batch in loader:
        with torch.no_grad():
            out = module.model.generate(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                pixel_values=batch["pixel_values"],
                max_new_tokens=4,
                do_sample=False,
            )
        answers = dm.processor.tokenizer.batch_decode(
            out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
        )
        for record, answer in zip(batch["records"], answers, strict=True):
            correct += TASKS["msa"].parse(answer) == TASKS["msa"].parse(record.response)
            total += 1
    assert total == 40 and correct / total >= 0.8  # chance: 0.5


@pytest.mark.parametrize("restart", [True, False])
def test_curriculum_switches_at_an_epoch(tiny_model_dir, demo_dir, tmp_path, restart):
    trainer, module, dm = run(
        tmp_path,
        tiny_model_dir,
        demo_dir,
        "stage=curriculum",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        "callbacks.curriculum.switch_epoch=1",
        f"callbacks.curriculum.restart_lora={restart}",
    )
    rows = [r for r in metrics(tmp_path) if r.get("train/stage")]
    assert [float(r["train/stage"]) for r in rows] == [1.0] * 3 + [2.0] * 3
    assert module.stage == 2 and dm.mixture == "second"
    assert len(module.merged) == (1 if restart else 0)
    # Stage two validates other tasks: its best checkpoint is ranked among stage two's alone.
    assert "step6-" in trainer.checkpoint_callback.best_model_path
    assert module.schedule_window == ((3, 6) if restart else None)  # stage two's own warmup + cosine


def test_runs_without_a_logger(tiny_model_dir, demo_dir, tmp_path):
    trainer, _, _ = run(tmp_path, tiny_model_dir, demo_dir, "logger=none", "trainer.limit_train_batches=2")
    assert trainer.logger is None and (tmp_path / "adapter/adapter_config.json").is_file()
    assert not (tmp_path / "csv").exists()


def test_a_run_shorter_than_an_epoch_says_what_trains_and_nothing_else(
    tiny_model_dir, demo_dir, tmp_path, caplog, recwarn
):
    """No warning about a monitor that no validation has set yet, no cloud tips, no FLOPs table."""
    with caplog.at_level("INFO"):
        run(tmp_path, tiny_model_dir, demo_dir, "logger=none", "trainer.max_steps=1")
    assert (tmp_path / "checkpoints/last.ckpt").is_file()
    assert not [w for w in recwarn if "could not find the monitored key" in str(w.message)]
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        re.fullmatch(r"trainable [\d.]+ K of [\d.]+ K parameters \([\d.]+ %\)", m) for m in messages
    ), messages
    assert not [m for m in messages if "Tip" in m or "FLOPs" in m]


def test_a_curriculum_switch_step_replaces_the_default_epoch_and_bad_values_stop_before_loading(tmp_path):
    from train import build_callbacks

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["stage=curriculum", "callbacks.curriculum.switch_step=3", f"output_dir={tmp_path}"],
        )
        curriculum = next(c for c in build_callbacks(cfg) if type(c).__name__ == "CurriculumCallback")
        assert (curriculum.switch_step, curriculum.switch_epoch) == (3, None)  # was "needs exactly one of"
        bad = compose(
            "train",
            overrides=[
                "stage=curriculum",
                "callbacks.curriculum.switch_step=-1",
                "model.path=/no/such/model",
                f"output_dir={tmp_path}",
            ],
        )
    from hydra.errors import InstantiationException

    with pytest.raises(InstantiationException, match="switch_step must be a positive integer, got -1"):
        train(bad)  # refused before the (missing) model is looked for; the entry point prints one line

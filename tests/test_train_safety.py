"""train.py and evaluate.py against what wrecks long runs: unsafe checkpoints, divergence, a failing
export, a kill before the first validation, stages that adapt different modules."""

import json
import re
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from peft import PeftModel
from transformers import InternVLForConditionalGeneration

import train as train_script
from evaluate import evaluate
from m2se.cli import run
from m2se.model.checkpoints import load_checkpoint
from m2se.model.module import M2SEModule
from m2se.tasks import TASKS
from train import build_trainer, train

CONF = Path(__file__).resolve().parents[1] / "conf"
FAST = [
    "experiment=demo",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=6",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
    "data.num_workers=0",
    "data.batch_size=4",
]


def config(name: str, out: Path, tiny_model_dir, demo_dir, *overrides):
    paths = [f"model.path={tiny_model_dir}", f"data.data_dir={demo_dir}", f"output_dir={out}"]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(
            name, overrides=[*paths, *(FAST if name == "train" else ["experiment=demo"]), *overrides]
        )


def one_line_exit(job, cfg) -> str:
    with pytest.raises(SystemExit) as exit_:
        run(job, cfg)
    message = str(exit_.value.code)
    assert message.startswith("error: ") and "\n" not in message
    return message


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("entry", ["train ckpt", "train resume", "evaluate ckpt"])
def test_a_checkpoint_carrying_code_is_refused_by_every_entry_point(
    tiny_model_dir, demo_dir, tmp_path, entry
):
    marker, evil = tmp_path / "pwned", tmp_path / "evil.ckpt"
    torch.save({"m2se": {"stage": 1, "merged": []}, "state_dict": {}, "x": Payload(marker)}, evil)
    script, key = entry.split()
    job = train if script == "train" else evaluate
    extra = ["task=msa"] if script == "evaluate" else []
    message = one_line_exit(
        job, config(script, tmp_path / "out", tiny_model_dir, demo_dir, f"{key}={evil}", *extra)
    )
    assert "evil.ckpt: refused" in message and "posix.system" in message
    assert not marker.exists()


def test_a_diverging_run_stops_with_one_line_and_saves_nothing_non_finite(tiny_model_dir, demo_dir, tmp_path):
    cfg = config(
        "train",
        tmp_path,
        tiny_model_dir,
        demo_dir,
        "module.optimizer.lr=1e30",
        "module.optimizer.warmup_ratio=0",
    )
    message = one_line_exit(train, cfg)
    assert "training diverged: 5 optimizer steps in a row" in message
    assert not (tmp_path / "adapter").exists()
    for path in (tmp_path / "checkpoints").glob("*.ckpt"):  # whatever was saved is finite
        assert all(torch.isfinite(t).all() for t in load_checkpoint(path)["state_dict"].values())


def test_a_non_finite_step_is_skipped_counted_and_training_goes_on(
    tiny_model_dir, demo_dir, tmp_path, monkeypatch
):
    forward = M2SEModule.forward
    snapshots = {}

    def poisoned(self, batch):
        loss = forward(self, batch)
        snapshots[self.global_step] = {
            n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad
        }
        return loss * float("nan") if self.global_step == 2 else loss

    monkeypatch.setattr(M2SEModule, "forward", poisoned)
    trainer, module, _ = train(config("train", tmp_path, tiny_model_dir, demo_dir))
    assert trainer.global_step == 6 and module.guard.skipped == 1
    # Step 2 changed nothing (AdamW saw no gradient); the steps around it trained.
    assert all(torch.equal(snapshots[2][n], snapshots[3][n]) for n in snapshots[2])
    assert not all(torch.equal(snapshots[3][n], snapshots[4][n]) for n in snapshots[3])
    assert all(torch.isfinite(p).all() for p in module.parameters())
    rows = (tmp_path / "csv/metrics.csv").read_text()
    assert "train/skipped_steps" in rows


def test_periodic_checkpoints_do_not_wait_for_validation(tiny_model_dir, demo_dir, tmp_path, monkeypatch):
    seen = []

    class LastCheckpoint(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            path = tmp_path / "checkpoints/last.ckpt"
            seen.append(load_checkpoint(path)["global_step"] if path.is_file() else None)

    def with_probe(cfg, has_validation, **kwargs):
        trainer = build_trainer(cfg, has_validation, **kwargs)
        trainer.callbacks.insert(0, LastCheckpoint())
        return trainer

    monkeypatch.setattr(train_script, "build_trainer", with_probe)
    train(
        config(
            "train", tmp_path, tiny_model_dir, demo_dir, "+callbacks.model_checkpoint.every_n_train_steps=2"
        )
    )
    # Validation runs once, at the end of the 6-step epoch; last.ckpt follows every second step anyway.
    assert seen == [None, None, 2, 2, 4, 4]


def test_a_failing_export_keeps_the_final_checkpoint(tiny_model_dir, demo_dir, tmp_path, monkeypatch):
    def full_disk(self, out_dir):
        raise OSError(28, "No space left on device", str(out_dir))

    monkeypatch.setattr(M2SEModule, "save_adapter", full_disk)
    # max_steps ends the run mid-epoch, before the epoch-end validation that Lightning saves at.
    cfg = config("train", tmp_path, tiny_model_dir, demo_dir, "trainer.max_steps=4")
    message = one_line_exit(train, cfg)
    assert "No space left on device" in message and "adapter" in message
    assert load_checkpoint(tmp_path / "checkpoints/last.ckpt")["global_step"] == 4


def test_stage_two_may_adapt_other_modules_than_stage_one(tiny_model_dir, demo_dir, tmp_path):
    first = tmp_path / "first"
    train(config("train", first, tiny_model_dir, demo_dir, "stage=first"))
    second = tmp_path / "second"
    _, module, dm = train(
        config(
            "train",
            second,
            tiny_model_dir,
            demo_dir,
            "stage=second",
            f"ckpt={first / 'checkpoints/last.ckpt'}",
            "module.lora.target_modules=[q_proj,v_proj]",
            "module.lora.r=4",
        )
    )
    assert (second / "checkpoints/last.ckpt").is_file()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)]
    batch = dm.processor.collate([dm.processor(TASKS["erc"].query("Hi ."), "Joy.", videos=frames)])
    batch = {k: v.double() if torch.is_floating_point(v) else v for k, v in batch.items()}
    with torch.no_grad():
        reference = module.model.double().eval()(**batch).logits
        base = InternVLForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float64)
        plain = PeftModel.from_pretrained(base, second / "adapter").eval()
        assert plain.peft_config["default"].r == 8 + 4
        # Only float32 rounding of stage one's merged weights separates the two (see test_train).
        torch.testing.assert_close(plain(**batch).logits, reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["stage=second", "ckpt=FIRST"], "resume: the checkpoint is a stage-1 run with 0 earlier stage"),
        (
            ["data.batch_size=2"],
            "resume: the data settings differ from the interrupted run's \\(batch_size 4 -> 2",
        ),
        (["module.lora.r=4"], "resume: the LoRA settings differ from the interrupted run's \\(r 8 -> 4"),
        (["module.lora.alpha=2"], "resume: the LoRA settings differ .*lora_alpha 32 -> 2"),
    ],
    ids=["other stage", "other batch size", "other LoRA rank", "other LoRA alpha"],
)
def test_resume_refuses_a_config_that_would_not_continue_the_run(
    tiny_model_dir, demo_dir, tmp_path, change, message
):
    first = tmp_path / "first"
    train(config("train", first, tiny_model_dir, demo_dir, "trainer.max_steps=3"))
    last = first / "checkpoints/last.ckpt"
    change = [c.replace("FIRST", str(last)) for c in change]
    cfg = config("train", tmp_path / "resumed", tiny_model_dir, demo_dir, f"resume={last}", *change)
    assert re.search(message, one_line_exit(train, cfg))


def test_resuming_a_finished_run_says_so_and_leaves_its_adapter(tiny_model_dir, demo_dir, tmp_path, caplog):
    first = tmp_path / "first"
    train(config("train", first, tiny_model_dir, demo_dir, "trainer.max_steps=3"))
    again = tmp_path / "again"
    cfg = config(
        "train",
        again,
        tiny_model_dir,
        demo_dir,
        "trainer.max_steps=3",
        f"resume={first / 'checkpoints/last.ckpt'}",
    )
    trainer, _, _ = train(cfg)
    assert trainer.global_step == 3 and (again / "adapter/adapter_model.safetensors").is_file()
    assert "resume: nothing left to train" in caplog.text


def test_resume_refuses_trained_tensors_that_do_not_fit(tiny_model_dir, demo_dir, tmp_path):
    first = tmp_path / "first"
    train(config("train", first, tiny_model_dir, demo_dir, "trainer.max_steps=2"))
    checkpoint = load_checkpoint(first / "checkpoints/last.ckpt")
    name = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"][name] = torch.zeros(3, 3)
    torch.save(checkpoint, tmp_path / "misfit.ckpt")
    cfg = config("train", tmp_path / "r", tiny_model_dir, demo_dir, f"resume={tmp_path / 'misfit.ckpt'}")
    assert "resume: the checkpoint's trained tensors do not fit this model" in one_line_exit(train, cfg)


def test_an_epoch_whose_every_sample_is_skipped_stops_with_one_line(tiny_model_dir, demo_dir, tmp_path):
    items = [
        r for r in json.loads((demo_dir / "first_stage.json").read_text()) if "<sentiment>" in r["query"]
    ][:4]
    for item in items:
        item["images"] = ["media/does_not_exist.png"]
    path = tmp_path / "first_stage.json"
    path.write_text(json.dumps(items))
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[
            "experiment=demo", "stage=first", f"model.path={tiny_model_dir}", f"data.data_dir={demo_dir}",
            f"data.sources=[{{path: '{path}', media_root: '{demo_dir}'}}]", "~data.mixtures.first", "+data.mixtures.first={msa: null}", "~data.mixtures.second",
            f"output_dir={tmp_path / 'run'}", "data.num_workers=0", "data.val_fraction=0", "trainer.max_epochs=1",
        ])  # fmt: skip
    with pytest.raises(
        SystemExit, match=r"epoch 0: every training sample was skipped while loading \(media error \d+\)"
    ):
        run(train_script.train, cfg)


@pytest.mark.parametrize("forge", ["param_groups", "sampler", "schedule"])
def test_resuming_a_checkpoint_of_the_wrong_layout_is_one_line(tiny_model_dir, demo_dir, tmp_path, forge):
    def cfg(*extra):
        with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
            return compose("train", overrides=[
                "experiment=demo", "stage=first", f"model.path={tiny_model_dir}", f"data.data_dir={demo_dir}",
                f"output_dir={tmp_path / 'run'}", "data.num_workers=0", "trainer.max_steps=1", "logger=none",
                "module.val_generate=0", *extra,
            ])  # fmt: skip

    train_script.train(cfg())
    last = tmp_path / "run/checkpoints/last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    if forge == "param_groups":
        del checkpoint["optimizer_states"][0]["param_groups"]
    elif forge == "sampler":
        next(v for k, v in checkpoint.items() if "DataModule" in k)["sampler"].pop("timeline", None)
    else:
        checkpoint["m2se"]["schedule_steps"] = "many"
    forged = tmp_path / "forged.ckpt"
    torch.save(checkpoint, forged)
    with pytest.raises(SystemExit, match=f"error: {forged}: cannot resume from it"):
        run(train_script.train, cfg(f"resume={forged}", "trainer.max_steps=3"))

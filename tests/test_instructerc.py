"""experiment=instructerc end to end on the tiny model: built dialogue files, text-only training with the
auxiliaries, the checkpoint picked on dev W-F1, evaluation in native labels with either parse mode."""

import csv
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from evaluate import evaluate
from m2se.sources.cli import main as build
from train import train

CONF = Path(__file__).resolve().parents[1] / "conf"
HEADER = (
    "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
)
EMOTIONS = ("joy", "anger", "neutral", "sadness")


def meld_csv(path: Path, dialogues: int, split: int) -> None:
    with open(path, "w", newline="") as f:
        f.write(HEADER)
        writer = csv.writer(f, lineterminator="\n")
        for d in range(dialogues):
            for u in range(4):
                emotion = EMOTIONS[(d + u + split) % len(EMOTIONS)]
                text = f"line {u} of scene {d} in split {split}"
                writer.writerow(
                    [d * 4 + u, text, ("Ross", "Rachel")[u % 2], emotion, "x", d, u, 1, 1, "0", "1"]
                )


@pytest.fixture(scope="module")
def dialogue_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("instructerc")
    for split, dialogues, seed in (("train", 6, 0), ("dev", 2, 1), ("test", 2, 2)):
        meld_csv(out / f"{split}_sent_emo.csv", dialogues, seed)
        aux = ["--aux", "speaker,predict"] if split == "train" else []
        source = str(out / f"{split}_sent_emo.csv")
        assert (
            build(
                [
                    "dialogue",
                    source,
                    "--format",
                    "meld",
                    "--window",
                    "2",
                    *aux,
                    "--out",
                    str(out / f"{split}.json"),
                ]
            )
            == 0
        )
    return out


def compose_train(out: Path, tiny_model_dir, data_dir) -> object:
    overrides = [
        "experiment=instructerc",
        "model=tiny",
        "trainer=cpu",
        f"model.path={tiny_model_dir}",
        f"data.data_dir={data_dir}",
        f"output_dir={out}",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.accumulate_grad_batches=1",
        "trainer.log_every_n_steps=1",
        "data.num_workers=0",
        "module.load.gradient_checkpointing=false",
    ]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides)


def test_text_only_training_picks_the_checkpoint_on_dev_and_evaluates_natively(
    dialogue_dir, tiny_model_dir, tmp_path
):
    trainer, module, datamodule = train(compose_train(tmp_path / "run", tiny_model_dir, dialogue_dir))
    assert trainer.global_step == 8
    assert {r.task for r in datamodule.train_records} == {"erc_dialog", "speaker_id", "emotion_predict"}
    assert all(not r.media for r in datamodule.train_records)  # text only: no pixel values anywhere
    assert {r.source for r in datamodule.val_records} == {"dev.json"}  # never the test split
    checkpoint = trainer.checkpoint_callback
    assert checkpoint.monitor == "val/erc_dialog/f1_weighted" and checkpoint.mode == "max"
    assert "val_wf1" in Path(checkpoint.best_model_path).name
    assert "val/erc_dialog/meld/f1_weighted" in trainer.logged_metrics

    results = {}
    for parse in ("exact", "nearest"):
        cfg = None
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose(
                "evaluate",
                overrides=[
                    "model=tiny",
                    "data=instructerc",
                    "trainer.accelerator=cpu",
                    "trainer.precision=32-true",
                    f"model.path={tiny_model_dir}",
                    f"data.data_dir={dialogue_dir}",
                    f"ckpt={tmp_path / 'run/adapter'}",
                    "task=erc_dialog",
                    f"parse={parse}",
                    f"output_dir={tmp_path / parse}",
                    "data.num_workers=0",
                ],
            )
        results[parse] = evaluate(cfg)["erc_dialog"].metrics
    for metrics in results.values():
        assert metrics["count"] == 8 and "meld/f1_weighted" in metrics and "meld/f1_joyful" in metrics
    assert results["nearest"]["unparseable"] == 0  # every answer maps to some label
    rows = (tmp_path / "nearest/predictions/erc_dialog.jsonl").read_text().splitlines()
    assert all(json.loads(r)["parsed"] in json.loads(r)["meta"]["labels"] for r in rows)

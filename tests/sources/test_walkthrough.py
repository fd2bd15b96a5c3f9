"""The README's "Build the EMT dataset" path on small raw files: builders → stages → cache → train.py."""

import csv
import shutil
from pathlib import Path

import yaml
from test_build_cli import MELD_HEADER, build
from test_train import run

from m2se.data.cache import main as cache_main
from m2se.data.records import load_records

MOSEI_HEADER = "video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode\n"


def raw_data(demo_dir: Path, raw: Path, media: Path) -> None:
    """MELD and MOSEI files in their official formats, with demo clips and frames as their media."""
    clips = sorted((demo_dir / "media/clips").glob("*.mp4"))[:12]
    frames = sorted((demo_dir / "media/images").glob("*.png"))[:12]
    (media / "MELD").mkdir(parents=True)
    (media / "MOSEI").mkdir(parents=True)
    raw.mkdir()
    with open(raw / "train_sent_emo.csv", "w", newline="") as f:
        f.write(MELD_HEADER)
        writer = csv.writer(f, lineterminator="\n")
        for i, clip in enumerate(clips):
            dialogue, utterance = divmod(i, 4)
            shutil.copy(clip, media / "MELD" / f"dia{dialogue}_utt{utterance}.mp4")
            emotion = ("joy", "anger", "neutral")[i % 3]
            writer.writerow([i, f"line {i}", "Ross", emotion, "x", dialogue, utterance, 1, 1, "0", "1"])
    rows = []
    for i, frame in enumerate(frames):
        shutil.copy(frame, media / "MOSEI" / f"v{i}_0.png")
        rows.append(f"v{i},0,words {i},{(-1) ** i * 1.5},0,0,0,x,train\n")
    (raw / "label.csv").write_text(MOSEI_HEADER + "".join(rows))


def test_from_raw_files_to_a_trained_stage(demo_dir, tiny_model_dir, tmp_path, capsys):
    raw, data = tmp_path / "raw", tmp_path / "emoverse"
    raw_data(demo_dir, raw, data / "media")
    built = tmp_path / "built"
    meld = ("meld", raw / "train_sent_emo.csv", "--out", built / "meld_erc_train.json")
    assert build(capsys, *meld, "--media-prefix", "media/MELD/", "--media-root", data / "media/MELD")[0] == 0
    mosei = ("mosei", raw / "label.csv", "--split", "train", "--out", built / "mosei_msa_train.json")
    assert build(capsys, *mosei, "--media-prefix", "media/MOSEI/")[0] == 0

    config = tmp_path / "stages.yaml"
    stages = {
        "first_stage": [
            {"file": "built/mosei_msa_train.json", "fraction": 1.0},
            {"file": "built/meld_erc_train.json", "count": 6},
        ],
        "second_stage": [
            {"file": "built/mosei_msa_train.json", "fraction": 0.25},
            {"file": "built/meld_erc_train.json", "fraction": 1.0},
        ],
    }
    config.write_text(yaml.safe_dump({"seed": 7, "stages": stages}))
    code, out, err = build(capsys, "stages", "--config", config, "--out", data)
    assert code == 0 and "second_stage.json: 15 records (erc 12, msa 3)" in out, err
    second = load_records(data / "second_stage.json")  # media resolve against the stage folder
    assert len(second.records) == 15 and not second.skipped

    stage_files = [str(data / "first_stage.json"), str(data / "second_stage.json")]
    settings = ["--num-frames", "4", "--max-tiles", "4", "--model", str(tiny_model_dir)]  # as the demo trains
    assert cache_main([*stage_files, "--out", str(tmp_path / "cache"), *settings]) == 0
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 24  # 12 clips + 12 frames, each once

    mixtures = [
        "~data.mixtures.first",
        "+data.mixtures.first={msa: 1, erc: 1}",
        "~data.mixtures.second",
        "+data.mixtures.second={erc: 1}",
    ]
    trainer, _, datamodule = run(
        tmp_path / "run",
        tiny_model_dir,
        data,
        "stage=first",
        *mixtures,
        f"data.frame_cache={tmp_path / 'cache'}",
        "data.batch_size=2",
        "trainer.limit_train_batches=3",
    )
    assert trainer.global_step == 3 and datamodule.media.hits > 0 and datamodule.media.misses == 0
    assert (tmp_path / "run/adapter/adapter_config.json").is_file()

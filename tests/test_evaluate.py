"""evaluate.py: scoring prediction files, baselines and generation with the tiny model; its outputs."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from evaluate import evaluate
from m2se.data.records import RecordError
from m2se.tasks.exports import write_semeval as export_semeval
from m2se.tasks.prediction import Prediction

CONF = Path(__file__).resolve().parents[1] / "conf"


def config(out: Path, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("evaluate", overrides=[f"output_dir={out}", *overrides])


def as_predictions(path: Path, records: list[dict], answer=lambda r: r["response"]) -> Path:
    rows = [{**r, "response": answer(r), "label": r["response"]} for r in records]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def released(emoverse_dir):
    return {
        "erc": json.loads((emoverse_dir / "meld_test_data.json").read_text()),
        "ecpe": json.loads((emoverse_dir / "ecf2_caption_test.json").read_text()),
    }


@pytest.mark.parametrize("protocol", ["semeval", "emoverse"])
def test_perfect_predictions_on_the_released_files_score_one(released, tmp_path, protocol):
    path = as_predictions(tmp_path / "swift_infer.jsonl", released["erc"] + released["ecpe"])
    results = evaluate(config(tmp_path / "out", f"predictions={path}", f"protocol={protocol}"))
    assert set(results) == {"erc", "ecpe"}  # tasks inferred from the queries
    assert results["erc"].metrics["accuracy"] == 1.0 and results["erc"].metrics["f1_weighted"] == 1.0
    assert results["ecpe"].metrics["pair_f1"] == pytest.approx(1.0)
    assert results["ecpe"].metrics["pair_f1_weighted"] == pytest.approx(1.0)
    metrics = json.loads((tmp_path / "out/metrics.json").read_text())
    assert metrics["erc"]["count"] == 2610 and metrics["ecpe"]["count"] == 1821
    lines = (tmp_path / "out/predictions/erc.jsonl").read_text().splitlines()
    assert len(lines) == 2610 and json.loads(lines[0])["parsed"] == "Surprise"
    assert (tmp_path / "out/confusion_erc.png").read_bytes()[:4] == b"\x89PNG"
    conversations = json.loads((tmp_path / "out/ecpe_semeval.json").read_text())
    assert len(conversations) == 332 and conversations[0]["emotion-cause_pairs"][0] == ["1_disgust", "1"]


def test_trivial_and_unreadable_predictions(released, tmp_path):
    path = as_predictions(tmp_path / "p.json", released["erc"], answer=lambda r: "Neutral.")
    erc = evaluate(config(tmp_path / "a", f"predictions={path}", "task=erc"))["erc"].metrics
    assert erc["accuracy"] == pytest.approx(1256 / 2610) and erc["unparseable"] == 0
    path = as_predictions(tmp_path / "q.json", released["erc"], answer=lambda r: "I cannot tell.")
    erc = evaluate(config(tmp_path / "b", f"predictions={path}", "task=erc"))["erc"].metrics
    assert erc["accuracy"] == 0 and erc["unparseable"] == 2610 and erc["unparseable_rate"] == 1.0


def test_baselines_need_no_model(emoverse_dir, tmp_path, capsys):
    data = f"data.data_dir={emoverse_dir}"
    erc = evaluate(config(tmp_path / "m", "task=erc", "baseline=majority", data))["erc"].metrics
    assert erc["accuracy"] == pytest.approx(1256 / 2610)
    ecpe = evaluate(config(tmp_path / "s", "task=ecpe", "baseline=self_cause", data))["ecpe"].metrics
    assert 0.3 < ecpe["pair_f1_weighted"] < ecpe["pair_precision"] < 1  # the target is often its own cause
    assert "| ecpe |" in capsys.readouterr().out
    with pytest.raises(
        ValueError,
        match="applies to none of the tasks with a test file \\(their baselines: ecpe: self_cause, self_previous\\)",
    ):
        evaluate(config(tmp_path / "x", "task=ecpe", "baseline=majority", data))
    results = evaluate(config(tmp_path / "all", "task=all", "baseline=majority", data))
    assert set(results) == {"erc"}  # ecpe's test file has no majority baseline: said, not dropped silently
    assert (
        "baseline=majority does not apply to ecpe (their baselines: ecpe: self_cause, self_previous)"
        in capsys.readouterr().err
    )


def test_a_missing_test_file_says_where_to_get_it(tmp_path):
    # A fresh clone: data/emoverse holds none of EmoVerse's released test files yet.
    data = f"data.data_dir={tmp_path / 'emoverse'}"
    missing = r"emoverse/meld_test_data.json: no such file \(see docs/DATA.md\)$"
    with pytest.raises(RecordError, match=missing):
        evaluate(config(tmp_path / "m", "task=erc", "baseline=majority", data))


def test_bad_prediction_files_and_tasks_say_where(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"response": "Joy.", "label": "Joy.", "query": "x <emotion>"}\n{"response": "Joy."}\n')
    with pytest.raises(RecordError, match=r"p.jsonl:2: 'label' \(the gold answer\) is missing"):
        evaluate(config(tmp_path / "o", f"predictions={path}", "task=erc"))
    with pytest.raises(ValueError, match="unknown task 'emotion'"):
        evaluate(config(tmp_path / "o", "task=emotion", "baseline=majority"))
    with pytest.raises(RecordError, match="is a folder: give one prediction file"):
        evaluate(config(tmp_path / "o", f"predictions={tmp_path}"))


def test_generation_with_the_tiny_model_on_the_demo(tiny_model_dir, demo_dir, tmp_path):
    cfg = config(
        tmp_path / "out",
        "experiment=demo",
        "task=all",
        f"model.path={tiny_model_dir}",
        f"data.data_dir={demo_dir}",
        "data.num_workers=0",
        "data.batch_size=20",
    )
    cfg.data.test_sources = {t: cfg.data.test_sources[t] for t in ("msa", "ecpe")}  # keep the test quick
    results = evaluate(cfg)
    assert set(results) == {"msa", "ecpe"}
    for task, result in results.items():
        assert result.metrics["count"] == 40 and 0 <= result.metrics["unparseable"] <= 40
        rows = (tmp_path / f"out/predictions/{task}.jsonl").read_text().splitlines()
        assert (
            len(rows) == 40
            and {"query", "response", "label", "media", "parsed"} <= json.loads(rows[0]).keys()
        )
        # Batched longest prompt first (ecpe's dialogues differ in length), written in record order.
        assert [json.loads(row)["where"] for row in rows] == [f"{task}.json:{i}" for i in range(40)]
    assert json.loads((tmp_path / "out/metrics.json").read_text())["msa"]["count"] == 40


def test_semeval_export_groups_by_conversation(tmp_path):
    rows = [
        Prediction(
            "ecpe", "1", "", "", ["ECF2/dia7utt3.mp4"], parsed=[(3, "joy", 3), (3, "joy", 2), (3, "joy", 3)]
        ),
        Prediction("ecpe", "2", "", "", ["x.mp4"], {"conversation_ID": 9}, parsed=[]),
        Prediction("ecpe", "3", "", "", ["clip.mp4"], parsed=[(1, "anger", 1)]),
    ]
    assert export_semeval(rows, tmp_path / "e.json") == (2, 1)
    export = json.loads((tmp_path / "e.json").read_text())
    assert export == [
        {"conversation_ID": 7, "emotion-cause_pairs": [["3_joy", "3"], ["3_joy", "2"]]},
        {"conversation_ID": 9, "emotion-cause_pairs": []},
    ]


def test_an_unwritable_run_folder_is_one_line(tmp_path):
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for script in ("evaluate.py", "train.py"):
        run = subprocess.run(
            [sys.executable, script, f"hydra.run.dir={blocker / 'run'}"],
            cwd=CONF.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 1 and "Traceback" not in run.stderr
        assert run.stderr.strip().splitlines()[-1] == (
            f"error: cannot write the run folder {blocker / 'run'} (Not a directory); set hydra.run.dir=DIR"
        )


def test_an_empty_test_file_is_refused_before_the_model_loads(demo_dir, tmp_path):
    empty = tmp_path / "msa.json"
    empty.write_text("[]")
    cfg = config(tmp_path / "out", "experiment=demo", "task=msa", f"data.data_dir={demo_dir}",
                 f"data.test_sources.msa.path={empty}", "model.path=/nonexistent")  # fmt: skip
    with pytest.raises(RecordError, match=f"{empty}: no records"):
        evaluate(cfg)


def test_a_test_file_whose_every_medium_is_missing_is_an_error_with_its_skips(
    tiny_model_dir, demo_dir, tmp_path
):
    items = json.loads((demo_dir / "test/msa.json").read_text())[:2]
    for item in items:
        item["images"] = ["media/does_not_exist.png"]
    path = tmp_path / "msa.json"
    path.write_text(json.dumps(items))
    cfg = config(tmp_path / "out", "experiment=demo", "task=msa", f"model.path={tiny_model_dir}",
                 f"data.data_dir={demo_dir}", f"data.test_sources.msa.path={path}", "data.num_workers=0")  # fmt: skip
    cfg.data.test_sources.msa.media_root = str(demo_dir)
    with pytest.raises(RecordError, match=r"msa.json: task msa: no records \(2 skipped\)"):
        evaluate(cfg)
    msa = json.loads((tmp_path / "out/metrics.json").read_text())["msa"]
    assert msa["count"] == 0 and msa["skipped"] == {"media error": 2}


def test_test_gold_the_parse_mode_cannot_read_is_refused_before_the_model_loads(demo_dir, tmp_path):
    items = json.loads((demo_dir / "test/mer2023.json").read_text())[:2]
    items[1]["response"] += "."  # Emotion-LLaMA's scorer reads "happy." as no label (JSON lists count from 0)
    path = tmp_path / "mer2023.json"
    path.write_text(json.dumps(items))
    cfg = config(tmp_path / "out", "experiment=demo", "task=mer2023", "parse=emotion_llama", f"data.data_dir={demo_dir}",
                 f"+data.test_sources.mer2023={{path: '{path}', media_root: '{demo_dir}'}}", "model.path=/nonexistent")  # fmt: skip
    with pytest.raises(
        RecordError, match=r"mer2023.json:1: gold label '\w+\.' is not one of mer2023's labels"
    ):
        evaluate(cfg)

"""Prediction files: every bad row names file:record; empty files, duplicates and denominators."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from evaluate import evaluate
from m2se.data.records import RecordError
from m2se.predictions import read_predictions
from m2se.tasks import TASKS
from m2se.templates import Utterance, ecpe_query

ROOT = Path(__file__).resolve().parents[1]
QUERY = TASKS["erc"].query("Hi .")


def row(response="Joy.", label="Joy.", **extra):
    return {"query": QUERY, "response": response, "label": label, "videos": ["dia1_utt1.mp4"], **extra}


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def config(out: Path, *overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("evaluate", overrides=[f"output_dir={out}", *overrides])


BAD_ROWS = [
    (row(label="Happy."), "unknown label 'Happy.' for task erc"),
    (row(label=["Joy."]), "'label' \\(the gold answer\\) is a list, not a string"),
    (row(response=None), "'response' \\(the prediction\\) is a NoneType"),
    (row(query=7), "'query' must be a string, got int"),
    (row(images={"a": 1}), "'images' must be a path or a list of paths"),
    (row(score="high"), "'score' must be a finite number, got 'high'"),
    (row(conversation_ID="x7"), "'conversation_ID' must be an integer, got 'x7'"),
    (row(response="Joy.\ud800"), "response has an unpaired UTF-16 surrogate"),
    ('{"query": ' * 3000, "bad JSON line"),
    ("[1]", "expected an object, got list"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_ROWS)
def test_a_bad_row_names_file_and_record(tmp_path, bad, message):
    path = jsonl(tmp_path / "p.jsonl", [row(), bad])
    with pytest.raises(RecordError, match=f"^p.jsonl:2: .*{message}"):
        read_predictions(path, "erc")
    read = read_predictions(path, "erc", skip_errors=True)  # data.on_bad_record=skip
    assert len(read.rows["erc"]) == 1 and sum(read.skipped["erc"].values()) == 1


def test_empty_files_and_duplicates(tmp_path):
    with pytest.raises(RecordError, match="p.jsonl: no records"):
        read_predictions(jsonl(tmp_path / "p.jsonl", []), None)
    with pytest.raises(RecordError, match=r"p.jsonl: no records \(1 skipped\)"):
        read_predictions(jsonl(tmp_path / "p.jsonl", [row(label=3)]), "erc", skip_errors=True)
    path = jsonl(tmp_path / "p.jsonl", [row(), row("Anger."), row(videos=["dia1_utt2.mp4"])])
    with pytest.raises(RecordError, match="p.jsonl:2: duplicate row .*duplicates=dedupe"):
        read_predictions(path, "erc")
    read = read_predictions(path, "erc", duplicates="dedupe")
    assert [r.response for r in read.rows["erc"]] == ["Joy.", "Joy."] and read.duplicates["erc"] == 1


def test_metrics_json_states_denominators_and_scoring(tmp_path):
    rows = [row(), row("joy", videos=["b.mp4"]), row("The emotion is joy", videos=["c.mp4"])]
    path = jsonl(tmp_path / "p.jsonl", [*rows, row(label="Happy."), row(score="x"), rows[0]])
    evaluate(config(tmp_path / "o", f"predictions={path}", "data.on_bad_record=skip", "duplicates=dedupe"))
    erc = json.loads((tmp_path / "o/metrics.json").read_text())["erc"]
    assert (erc["count"], erc["unparseable"], erc["duplicates_dropped"]) == (3, 1, 1)
    assert erc["skipped"] == {"unknown label": 1, "bad metadata": 1}
    assert (erc["parse"], erc["protocol"]) == ("exact", None)
    assert erc["f1_fear"] is None  # absent from gold and predictions: no F1 (JSON null)
    evaluate(config(tmp_path / "r", f"predictions={path}", "task=erc", "parse=emoverse", "data.on_bad_record=skip",
                    "duplicates=dedupe", "protocol=emoverse"))  # fmt: skip
    erc = json.loads((tmp_path / "r/metrics.json").read_text())["erc"]
    assert erc["parse"] == "emoverse" and erc["count"] == 3 and erc["unparseable"] == 2
    with pytest.raises(ValueError, match="parse=emotion_llama reproduces a published scorer erc never had"):
        evaluate(config(tmp_path / "x", f"predictions={path}", "task=erc", "parse=emotion_llama"))


def test_empty_files_exit_non_zero_with_one_line(tmp_path):
    empty = jsonl(tmp_path / "empty.jsonl", [])
    run = subprocess.run(
        [sys.executable, "evaluate.py", f"predictions={empty}", f"hydra.run.dir={tmp_path / 'o'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1] == f"error: {empty}: no records"


def test_dialogue_rows_with_huge_or_inconsistent_label_lists_name_the_row(tmp_path):
    def dialogue(labels, native="a", **extra):
        meta = {"dataset": "mycorpus", "labels": labels, "native": native, "dialogue_id": 1, **extra}
        return {"query": "", "response": native, "label": native, **meta}

    path = jsonl(tmp_path / "p.jsonl", [dialogue([f"l{i}" for i in range(60_000)], "l1")])
    with pytest.raises(RecordError, match="p.jsonl:1: 'labels' lists 60000 labels \\(at most 256\\)"):
        read_predictions(path, "erc_dialog")
    path = jsonl(tmp_path / "p.jsonl", [dialogue(["a", "b"], turn=1), dialogue(["a", "c"], turn=2)])
    cfg = config(tmp_path / "o", f"predictions={path}", "task=erc_dialog")
    with pytest.raises(RecordError, match="p.jsonl:2: mycorpus rows offer other labels than its first row"):
        evaluate(cfg)


def test_a_task_whose_every_row_was_skipped_is_reported_and_an_error(tmp_path, capsys):
    bad = row(label="Joyful.")
    msa = {
        "query": TASKS["msa"].query("Hi ."),
        "response": "Positive.",
        "label": "Positive.",
        "images": ["a.png"],
    }
    path = jsonl(tmp_path / "p.jsonl", [bad, msa])
    cfg = config(tmp_path / "o", f"predictions={path}", "data.on_bad_record=skip")
    with pytest.raises(RecordError, match=r"p.jsonl: task erc: no records \(1 skipped\)"):
        evaluate(cfg)
    assert "skipped p.jsonl:1: unknown label 'Joyful.' for task erc" in capsys.readouterr().err
    metrics = json.loads((tmp_path / "o/metrics.json").read_text())
    assert metrics["msa"]["count"] == 1 and metrics["erc"] == {
        "count": 0, "unparseable": 0, "skipped": {"unknown label": 1}, "duplicates_dropped": 0, "parse": "exact",
        "protocol": None,
    }  # fmt: skip


def test_duplicates_spelled_differently_are_still_duplicates(tmp_path):
    rows = [row(), row(label="joy"), row(label="Joy. "), row(videos=["./dia1_utt1.mp4"])]
    read = read_predictions(jsonl(tmp_path / "p.jsonl", rows), "erc", duplicates="dedupe")
    assert len(read.rows["erc"]) == 1 and read.duplicates["erc"] == 3


def test_ecpe_indices_too_long_for_int_are_no_pairs(tmp_path):
    query = "x"
    rows = [{"query": query, "response": "1" * 5000 + "_joy,1", "label": "1_joy,1", "videos": ["dia1utt1.mp4"]},
            {"query": query, "response": "", "label": "", "videos": ["dia" + "1" * 5000 + "utt4.mp4"]}]  # fmt: skip
    evaluate(config(tmp_path / "o", f"predictions={jsonl(tmp_path / 'p.jsonl', rows)}", "task=ecpe"))
    ecpe = json.loads((tmp_path / "o/metrics.json").read_text())["ecpe"]
    assert ecpe["count"] == 2 and ecpe["pair_f1"] == 0.0 and ecpe["unparseable"] == 1


def test_evaluate_reads_back_its_own_predictions_files(tmp_path):
    rows = [row(videos=["dia1_utt1.mp4"]), row(videos=["dia1_utt2.mp4"])]
    evaluate(config(tmp_path / "a", f"predictions={jsonl(tmp_path / 'p.jsonl', rows)}", "task=erc"))
    written = tmp_path / "a/predictions/erc.jsonl"
    assert [json.loads(line)["media"] for line in written.read_text().splitlines()][1] == ["dia1_utt2.mp4"]
    again = evaluate(config(tmp_path / "b", f"predictions={written}", "task=erc"))["erc"]
    assert again.metrics["count"] == 2 and again.rows[1].media == ["dia1_utt2.mp4"]
    assert "parsed" not in again.rows[0].meta and "media" not in again.rows[0].meta


def test_a_row_of_another_task_says_so(tmp_path):
    msa = {**row(), "query": TASKS["msa"].query("Hi ."), "label": "Positive."}
    with pytest.raises(RecordError, match="p.jsonl:1: unknown label 'Positive.' .*a msa query: task=all"):
        read_predictions(jsonl(tmp_path / "p.jsonl", [msa]), "erc")


def test_gold_the_reference_scorer_cannot_read_is_one_line_or_a_counted_skip(tmp_path, capsys):
    query = TASKS["mer2023"].query("Hi")
    rows = [
        {"query": query, "response": "happy", "label": gold, "videos": [f"{gold}mp4"]}
        for gold in ("happy", "happy.")
    ]
    path = jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(RecordError, match=r"p.jsonl:2: gold label 'happy.' is not one of mer2023's labels"):
        evaluate(config(tmp_path / "a", f"predictions={path}", "parse=emotion_llama"))
    result = evaluate(
        config(tmp_path / "b", f"predictions={path}", "parse=emotion_llama", "data.on_bad_record=skip")
    )
    assert result["mer2023"].metrics["count"] == 1 and result["mer2023"].skipped == {"unknown label": 1}
    assert "skipped p.jsonl:2: gold label 'happy.'" in capsys.readouterr().err
    assert json.loads((tmp_path / "b/metrics.json").read_text())["mer2023"]["skipped"] == {"unknown label": 1}


def test_ecpe_whose_every_gold_is_empty_has_no_emoverse_score(tmp_path):
    query = ecpe_query([Utterance("A", "Hi .", "joy")], 1)
    rows = [
        {"query": query, "response": "1_joy,1", "label": "", "videos": [f"dia1utt{i}.mp4"]} for i in (1, 2)
    ]
    path = jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(
        RecordError, match="every record has an empty gold answer, which protocol=emoverse leaves out"
    ):
        evaluate(config(tmp_path / "a", f"predictions={path}", "protocol=emoverse"))
    assert (
        evaluate(config(tmp_path / "b", f"predictions={path}"))["ecpe"].metrics["count"] == 2
    )  # semeval scores them


def test_meta_that_is_no_object_or_contradicts_the_row_is_refused(tmp_path):
    for meta, message in (
        ("note", "'meta' must be an object, got str"),
        ({"speaker": "Ross"}, "'speaker' differs"),
    ):
        path = jsonl(tmp_path / "p.jsonl", [row(meta=meta, speaker="Joey")])
        with pytest.raises(RecordError, match=f"p.jsonl:1: {message}"):
            read_predictions(path, "erc")
    same = read_predictions(
        jsonl(tmp_path / "q.jsonl", [row(meta={"speaker": "Joey"}, speaker="Joey")]), "erc"
    )
    assert same.rows["erc"][0].meta == {"speaker": "Joey"}


def test_a_semeval_export_that_leaves_rows_out_says_so(tmp_path, capsys):
    query = ecpe_query([Utterance("A", "Hi .", "joy")], 1)
    rows = [
        {"query": query, "response": "1_joy,1", "label": "1_joy,1", "videos": [v]}
        for v in ("dia4utt1.mp4", "x.mp4")
    ]
    evaluate(config(tmp_path / "o", f"predictions={jsonl(tmp_path / 'p.jsonl', rows)}"))
    assert "ecpe_semeval.json: 1 of 2 rows left out (1 conversations written)" in capsys.readouterr().err
    none = [{**rows[1], "videos": [f"clip{i}.mp4"]} for i in (1, 2)]
    evaluate(config(tmp_path / "n", f"predictions={jsonl(tmp_path / 'n.jsonl', none)}"))
    assert "no ecpe_semeval.json: none of the 2 rows has a conversation_ID" in capsys.readouterr().err
    assert not (tmp_path / "n/ecpe_semeval.json").exists()  # not an empty submission


def test_a_parse_mode_on_a_task_without_label_answers_is_refused(tmp_path):
    path = jsonl(tmp_path / "p.jsonl", [row()])
    with pytest.raises(ValueError, match="parse=emoverse reads label answers; fer's answers are phrases"):
        evaluate(config(tmp_path / "x", f"predictions={path}", "task=fer", "parse=emoverse"))

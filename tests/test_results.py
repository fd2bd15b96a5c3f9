"""Results with their context: baselines scored on the model's own rows, results.md, the table's column."""

import json

import pytest

from evaluate import evaluate
from m2se.evaluation import markdown_table, score
from m2se.results import baseline_column, compare, results_markdown, score_baselines
from m2se.tasks.prediction import Prediction
from tests.test_evaluate import config


def erc_rows(labels):
    return [Prediction("erc", f"t.json:{i}", "q", f"{label}.") for i, label in enumerate(labels)]


def test_baselines_answer_the_same_rows_and_the_comparison_needs_every_headline_metric():
    gold = ["Joy"] * 6 + ["Anger"] * 4
    model = score("erc", ["Joy."] * 6 + ["Joy."] * 2 + ["Anger."] * 2, erc_rows(gold))
    baselines, notes = score_baselines({"erc": model}, "semeval", None)
    assert notes == []
    majority = baselines["erc"]["majority"]
    assert majority.metrics["count"] == 10 and majority.metrics["accuracy"] == pytest.approx(0.6)
    comparison = compare("erc", model, baselines["erc"])
    assert [row[0] for row in comparison.rows] == ["accuracy", "f1_weighted"] and comparison.above
    weak = score("erc", ["Anger."] * 10, erc_rows(gold))  # below majority on both
    assert not compare("erc", weak, baselines["erc"]).above
    cell = baseline_column({"erc": weak}, baselines)["vs baseline"]["erc"]
    assert cell.startswith("accuracy 0.4000 < 0.6000 majority; f1_weighted")
    assert "| vs baseline |" in markdown_table({"erc": weak}, baseline_column({"erc": weak}, baselines))
    text = results_markdown({"erc": weak}, baselines, "a test")
    assert "## erc — NOT above baseline" in text and "| accuracy | 0.4000 | 0.6000 |" in text


def test_a_task_without_rows_or_baselines_has_no_comparison():
    empty = score("erc", [], [])
    assert score_baselines({"erc": empty}, "semeval", None) == ({}, [])
    assert compare("erc", empty, {}) is None and baseline_column({"erc": empty}, {}) == {}


def test_evaluate_writes_results_md_and_baselines_beside_a_predictions_file(demo_dir, tmp_path, capsys):
    records = json.loads((demo_dir / "test/ecpe.json").read_text())
    path = tmp_path / "ecpe.jsonl"
    path.write_text("\n".join(json.dumps({**r, "label": r["response"]}) for r in records))
    evaluate(config(tmp_path / "out", "task=ecpe", f"predictions={path}"))
    metrics = json.loads((tmp_path / "out/metrics.json").read_text())["ecpe"]
    assert metrics["pair_f1"] == 1.0 and set(metrics["baselines"]) == {"self_cause", "self_previous"}
    assert all(b["count"] == len(records) for b in metrics["baselines"].values())
    results = (tmp_path / "out/results.md").read_text()
    assert "## ecpe — above baseline" in results and f"the predictions file {path}" in results
    assert "pair_f1 1.0000 >" in capsys.readouterr().out


def test_a_baseline_run_is_not_compared_with_itself(demo_dir, tmp_path):
    evaluate(config(tmp_path / "out", "task=erc", "baseline=majority", f"data.data_dir={demo_dir}",
                    "experiment=demo"))  # fmt: skip
    assert "baselines" not in json.loads((tmp_path / "out/metrics.json").read_text())["erc"]
    assert "the majority baseline" in (tmp_path / "out/results.md").read_text()


def test_a_baseline_that_cannot_answer_the_rows_is_left_out_with_a_note():
    rows = [Prediction("ecpe", "p.jsonl:1", "no target line here", "1_joy,1")]
    scored, notes = score_baselines({"ecpe": score("ecpe", ["1_joy,1"], rows)}, "semeval", None)
    assert scored == {} and notes[0].startswith("ecpe: no self_cause baseline for these rows (p.jsonl:1: no")
    assert f"## Baselines left out\n\n- {notes[0]}" in results_markdown({}, scored, "a file", notes)
    text = results_markdown({"ecpe": score("ecpe", ["1_joy,1"], rows)}, scored, "a file", notes)
    assert "| metric | model |\n|---|---|\n| pair_precision |" in text

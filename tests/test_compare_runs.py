"""python -m m2se.compare_runs: evaluations side by side, each task against its best baseline."""

import json

import pytest

from m2se.compare_runs import main, read_run, runs_table


def _run(folder, **tasks):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(tasks))
    return folder


def _fer(model: float, majority: float = 0.25) -> dict:
    return {"phrase_f1": model, "count": 40, "baselines": {"majority": {"phrase_f1": majority}}}


def _msa(accuracy: float, f1: float) -> dict:
    majority = {"accuracy": 0.7, "f1_weighted": 0.58}
    return {"accuracy": accuracy, "f1_weighted": f1, "baselines": {"majority": majority}}


def test_a_task_above_in_one_run_only_reads_as_above(tmp_path, capsys):
    first = _run(tmp_path / "eval_first", fer=_fer(1.0), msa=_msa(0.6, 0.5))
    second = _run(tmp_path / "eval", fer=_fer(0.0), msa=_msa(0.8, 0.5))
    assert main([str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert "| task | metric | eval_first | eval |" in out
    assert "| fer | phrase_f1 | 1.0000 > 0.2500 majority | 0.0000 < 0.2500 majority |" in out
    # msa beats majority on accuracy in eval but not on f1_weighted: above in no run.
    assert "| msa | f1_weighted | 0.5000 < 0.5800 majority | 0.5000 < 0.5800 majority |" in out
    assert "above its baselines in at least one run: fer\nin none: msa" in out


def test_a_task_missing_from_a_run_or_without_baselines_is_a_dash(tmp_path):
    first = read_run(_run(tmp_path / "a", fer=_fer(0.5), eri={"rougeL": 0.4}))
    second = read_run(_run(tmp_path / "b", eri={"rougeL": 0.9}, other={"x": 1}))
    table = runs_table({"a": first, "b": second})
    assert "| fer | phrase_f1 | 0.5000 > 0.2500 majority | – |" in table
    assert "| eri | rougeL | – | – |" in table and "other" not in table


@pytest.mark.parametrize(
    "content, message",
    [(None, "no such file"), ("{", "not readable as JSON"), ("[1, 2]", "expected an object")],
)
def test_unreadable_runs_are_one_line(tmp_path, capsys, content, message):
    folder = tmp_path / "run"
    folder.mkdir()
    if content is not None:
        (folder / "metrics.json").write_text(content)
    assert main([str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(folder / "metrics.json") in err and message in err


def test_the_same_run_twice_gets_two_columns_and_a_metrics_file_is_taken_as_its_run(tmp_path, capsys):
    run = _run(tmp_path / "eval", fer=_fer(0.5))
    assert main([str(run), str(run / "metrics.json")]) == 0
    out = capsys.readouterr().out
    assert "| task | metric | eval (1) | eval (2) |" in out
    assert "| fer | phrase_f1 | 0.5000 > 0.2500 majority | 0.5000 > 0.2500 majority |" in out

"""Notebooks are committed with their outputs stripped, and run top to bottom on the demo's data and
an evaluation's outputs (nbclient, the `dev` extra's Jupyter kernel)."""

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from evaluate import evaluate
from tests.test_evaluate import config

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells
    for cell in cells:
        assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.fixture(scope="module")
def results_dir(demo_dir, tmp_path_factory):
    """An evaluation of every demo task from a predictions file: gold answers for half the rows."""
    rows = []
    for path in sorted((demo_dir / "test").glob("*.json")):
        for i, record in enumerate(json.loads(path.read_text())):
            rows.append(
                {**record, "label": record["response"], "response": record["response"] if i % 2 else ""}
            )
    predictions = tmp_path_factory.mktemp("pred") / "all.jsonl"
    predictions.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path_factory.mktemp("eval")
    evaluate(config(out, "task=all", f"predictions={predictions}"))
    return out


def run_notebook(path: Path, env: dict[str, str]) -> list[str]:
    """Execute ``path`` from its folder with ``env`` set; the text it printed or returned."""
    notebook = nbformat.read(path, as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text") or str(output.get("data", {}).get("text/plain", "")))
    return texts


def test_explore_data_runs_on_the_demo_data(demo_dir, tiny_model_dir):
    path = next(p for p in NOTEBOOKS if p.name == "explore_data.ipynb")
    out = "\n".join(run_notebook(path, {"M2SE_DATA": str(demo_dir), "M2SE_MODEL": str(tiny_model_dir)}))
    assert "records" in out and "'p50'" in out


def test_results_runs_on_an_evaluation(results_dir):
    path = next(p for p in NOTEBOOKS if p.name == "results.ipynb")
    out = "\n".join(run_notebook(path, {"M2SE_RESULTS": str(results_dir)}))
    assert "| ecpe | pair_f1 |" in out and "self_previous" in out  # the baselines beside the model
    assert "ECPE answers differ from the gold pairs" in out and "gold:" in out

"""Adding a task of an existing answer format is one Task entry plus its data config.

Proved by a task defined in this file alone ("valence", the demo's warm/cold images as High/Low): it
is read, inspected, trained through train.py, evaluated through evaluate.py (generation, majority
baseline, a predictions file with the task inferred from its queries) without any other change.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from evaluate import evaluate
from m2se.data.inspect import inspect_files
from m2se.data.records import load_records
from m2se.tasks import TASKS, Labels, Task, infer_task, register_task, unregister_task
from train import train

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
VALENCE = Task(
    "valence",
    Labels(("High", "Low")),
    "Please rate the valence shown in the image: high or low.",
    "<valence>",
    max_new_tokens=8,
)


@pytest.fixture
def valence(tmp_path, demo_dir):
    """The task registered, and its train/test files built from the demo's msa images."""
    register_task(VALENCE)
    files = {}
    for split, source in (("train", demo_dir / "first_stage.json"), ("test", demo_dir / "test/msa.json")):
        msa = [r for r in load_records(source, demo_dir).records if r.task == "msa"][:24]
        records = [
            {
                "query": VALENCE.query("I moved the boxes on Tuesday."),
                "response": VALENCE.format("High" if r.response == "Positive." else "Low"),
                "images": [str(p.relative_to(demo_dir)) for p in r.images],
            }
            for r in msa
        ]
        files[split] = tmp_path / f"valence_{split}.json"
        files[split].write_text(json.dumps(records))
    yield files
    unregister_task("valence")
    assert "valence" not in TASKS


def compose_config(name: str, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(name, overrides=["experiment=demo", *overrides])


def test_a_task_defined_in_a_test_trains_and_evaluates(valence, tmp_path, tiny_model_dir, demo_dir):
    test_source = f"+data.test_sources.valence={{path: '{valence['test']}', media_root: '{demo_dir}'}}"
    report = inspect_files([valence["train"]], demo_dir, None, decode=False)
    assert report["tasks"] == {"valence": 24} and set(report["answers"]["valence"]) == {"High", "Low"}

    run = tmp_path / "run"
    common = [f"model.path={tiny_model_dir}", f"data.data_dir={demo_dir}", "data.num_workers=0"]
    train(
        compose_config(
            "train",
            *common,
            f"output_dir={run}",
            f"data.sources=[{{path: '{valence['train']}', media_root: '{demo_dir}'}}]",
            "~data.mixtures",
            "+data.mixtures={first: {valence: 1}, second: {valence: 1}}",
            "data.val_fraction=0.2",
            "data.batch_size=4",
            "module.val_generate=4",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=4",
            "trainer.log_every_n_steps=1",
        )
    )
    assert (run / "adapter/adapter_config.json").is_file()
    logged = (run / "csv/metrics.csv").read_text().splitlines()[0].split(",")
    assert "val/valence/accuracy" in logged and "train/valence/loss" in logged

    generated = evaluate(
        compose_config(
            "evaluate",
            *common,
            "task=valence",
            f"ckpt={run / 'adapter'}",
            test_source,
            f"output_dir={tmp_path / 'eval'}",
        )
    )["valence"]
    keys = generated.metrics.keys()
    assert generated.metrics["count"] == 24 and generated.parse == "exact"
    assert {
        "accuracy",
        "f1_weighted",
        "f1_high",
        "f1_low",
    } <= keys and "recall_high" not in keys  # Labels' default
    assert len((tmp_path / "eval/predictions/valence.jsonl").read_text().splitlines()) == 24

    majority = evaluate(
        compose_config(
            "evaluate",
            *common,
            "task=valence",
            "baseline=majority",
            test_source,
            f"output_dir={tmp_path / 'base'}",
        )
    )["valence"]
    assert majority.metrics["count"] == 24 and majority.metrics["unparseable"] == 0

    rescored = evaluate(
        compose_config(
            "evaluate",
            "task=all",
            f"predictions={tmp_path / 'eval/predictions/valence.jsonl'}",
            f"output_dir={tmp_path / 'again'}",
        )
    )
    assert (
        set(rescored) == {"valence"}
        and rescored["valence"].metrics["accuracy"] == generated.metrics["accuracy"]
    )


def test_a_task_cannot_shadow_another_or_take_its_instruction():
    with pytest.raises(ValueError, match="task 'msa' exists"):
        register_task(Task("msa", Labels(("A", "B")), "Something new.", "<x>"))
    with pytest.raises(ValueError, match="has the instruction of task 'erc'"):
        register_task(Task("erc2", Labels(("A", "B")), TASKS["erc"].instruction, "<x>"))
    # An instruction inside mer's and erc's (which share <emotion>) made both unrecognisable.
    with pytest.raises(ValueError, match="queries of mer, erc would no longer be recognised"):
        register_task(Task("polite", Labels(("A", "B")), "Please", "<z>"))
    with pytest.raises(ValueError, match="queries of longer would no longer be recognised"):
        register_task(
            Task("longer", Labels(("A", "B")), TASKS["mer"].instruction + " Be brief.", "<emotion>")
        )
    with pytest.raises(TypeError, match="register_task takes a Task"):
        register_task("msa")
    assert not {"erc2", "polite", "longer"} & set(TASKS)
    assert infer_task(TASKS["mer"].query("x")) == "mer" and infer_task(TASKS["erc"].query("x")) == "erc"


def test_a_task_registered_in_your_own_module_reaches_the_command_line(tmp_path):
    module = tmp_path / "my_tasks.py"
    module.write_text(
        "from m2se.tasks import Labels, Task, register_task\n"
        "register_task(Task('valence', Labels(('High', 'Low')), "
        "'Please rate the valence shown in the image: high or low.', '<valence>'))\n"
    )
    query = VALENCE.query("I moved the boxes.")
    rows = [
        {"query": query, "response": r, "label": g, "images": ["a.png"]}
        for r, g in (("High.", "High."), ("x", "Low."))
    ]
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    command = [sys.executable, "evaluate.py", f"predictions={predictions}", f"output_dir={tmp_path / 'out'}"]
    done = subprocess.run([*command, f"imports=[{module}]"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "out/metrics.json").read_text())["valence"]["accuracy"] == 0.5
    missing = subprocess.run([*command, "imports=[no_such_tasks]"], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 1 and "error: imports: no module named 'no_such_tasks'" in missing.stderr

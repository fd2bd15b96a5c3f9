"""Mixtures are {task: weight} maps: one weight overrides alone, 0 leaves a task out, bad entries say so."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from m2se.data.mixtures import mixture_weights

ROOT = Path(__file__).resolve().parents[2]


def test_map_and_list_forms_read_the_same():
    assert mixture_weights("first", {"msa": 3, "mer": 1}) == {"msa": 3, "mer": 1}
    assert mixture_weights("first", [{"task": "msa", "weight": 3}, {"task": "mer", "weight": 1}]) == {
        "msa": 3,
        "mer": 1,
    }
    assert mixture_weights("first", {"msa": None, "mer": None}) == {"msa": None, "mer": None}


def test_a_zero_weight_leaves_the_task_out():
    assert mixture_weights("second", {"msa": 1, "ecpe": 0}) == {"msa": 1}
    with pytest.raises(ValueError, match="mixture 'second' has no tasks"):
        mixture_weights("second", {"ecpe": 0})


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"sentiment": 1}, "mixture 'm': unknown task 'sentiment'"),
        ({"msa": -1}, "task 'msa' has weight -1"),
        ({"msa": float("nan")}, "task 'msa' has weight nan"),
        ({"msa": "3"}, "task 'msa' has weight '3'"),
        ({"msa": True}, "task 'msa' has weight True"),
        ([{"task": "msa"}, {"task": "msa", "weight": 2}], "task 'msa' is listed twice"),
        ([{"weight": 2}], "expected {task: weight}"),
        ("msa", "expected {task: weight}"),
    ],
)
def test_bad_entries_name_the_mixture_and_task(entries, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        mixture_weights("m", entries)


def test_one_weight_changes_from_the_command_line_and_experiments_add_tasks():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train", overrides=["experiment=demo", "data.mixtures.second.ecpe=7", "data.mixtures.first.mer=0"]
        )
        audio = compose("train", overrides=["experiment=demo_audio"])
    weights = {name: mixture_weights(name, m) for name, m in cfg.data.mixtures.items()}
    # The demo's stage two gives ecpe the largest share (conf/data/demo.yaml); one weight still changes alone.
    assert weights == {"first": {"msa": 3, "fer": 3}, "second": {"msa": 1, "eri": 2, "erc": 2, "ecpe": 7}}
    # demo_audio states only what it adds to the demo's mixtures.
    assert dict(audio.data.mixtures.first) == {"msa": 3, "mer": 1, "fer": 3, "mer2023": 3}
    assert dict(audio.data.mixtures.second) == {"msa": 1, "eri": 2, "erc": 2, "ecpe": 6, "mer2023": 1}

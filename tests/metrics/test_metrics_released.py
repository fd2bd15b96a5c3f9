"""The two released EmoVerse test files: gold scores perfectly; the trivial baselines' numbers."""

import json

import pytest

from m2se.tasks import TASKS, TaskMetrics
from m2se.tasks import self_cause as self_cause_baseline
from m2se.tasks.prediction import Prediction


def majority_baseline(references, task):
    return TASKS[task].baseline(
        "majority", [Prediction(task, f"r{i}", "", r) for i, r in enumerate(references)]
    )


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def scores(task, predictions, references, protocol="semeval"):
    metrics = TaskMetrics(task, protocol)
    metrics.update(predictions, references)
    return metrics.compute()


def test_meld_gold_is_perfect_and_majority_baseline(emoverse_dir):
    gold = [r["response"] for r in load(emoverse_dir / "meld_test_data.json")]
    perfect = scores("erc", gold, gold)
    assert perfect["accuracy"] == perfect["f1_weighted"] == 1.0 and perfect["count"] == 2610
    majority = scores("erc", majority_baseline(gold, "erc"), gold)
    print(
        f"\nerc majority (Neutral.): accuracy {majority['accuracy']:.4f}, f1_weighted {majority['f1_weighted']:.4f}"
    )
    # 1256 of 2610 are Neutral: accuracy 0.4812; Neutral F1 2*1256/(2610+1256) = 0.6498, weighted 0.3127.
    assert majority["accuracy"] == pytest.approx(1256 / 2610)
    assert majority["f1_weighted"] == pytest.approx(0.6497672 * 1256 / 2610)


@pytest.mark.parametrize("protocol", ["semeval", "emoverse"])
def test_ecf_gold_is_perfect_and_self_cause_baseline(emoverse_dir, protocol):
    records = load(emoverse_dir / "ecf2_caption_test.json")
    gold = [r["response"] for r in records]
    perfect = scores("ecpe", gold, gold, protocol)
    assert perfect["pair_f1"] == perfect["pair_f1_weighted"] == 1.0 and perfect["unparseable"] == 0
    baseline = scores("ecpe", self_cause_baseline([r["query"] for r in records]), gold, protocol)
    print(
        f"\necpe self-cause ({protocol}): pair_f1 {baseline['pair_f1']:.4f}, "
        f"pair_f1_weighted {baseline['pair_f1_weighted']:.4f}, P {baseline['pair_precision']:.4f}, "
        f"R {baseline['pair_recall']:.4f}"
    )
    assert 0 < baseline["pair_f1"] < 1 and 0 < baseline["pair_f1_weighted"] < 1
    if protocol == "emoverse":
        # What the released scorer prints for these predictions (no empty or duplicate answer to differ on).
        assert baseline["pair_f1"] == pytest.approx(0.5784221, abs=1e-6)
        assert baseline["pair_f1_weighted"] == pytest.approx(0.5769465, abs=1e-6)

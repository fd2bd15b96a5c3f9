"""msa, mer, erc through TaskMetrics: "no answer" is wrong but charges no real class's precision."""

import pytest
import torch

from m2se.tasks import TaskMetrics

ERC = ("Anger", "Sadness", "Surprise", "Disgust", "Joy", "Neutral", "Fear")


def scores(task, predictions, references, meta=None):
    metrics = TaskMetrics(task)
    metrics.update(predictions, references, meta)
    return metrics.compute()


@pytest.mark.parametrize("task", ["msa", "mer", "erc"])
def test_perfect_predictions_score_one(task):
    labels = TaskMetrics(task).task.labels
    gold = [f"{label}." for label in labels] * 2
    out = scores(task, gold, gold)
    per_class = "recall" if task == "msa" else "f1"
    assert out["accuracy"] == out["f1_weighted"] == out["f1_macro"] == 1.0
    assert all(out[f"{per_class}_{label.lower()}"] == 1.0 for label in labels)
    assert (out["count"], out["unparseable"], out["unparseable_rate"]) == (len(gold), 0, 0.0)


def test_unparseable_is_wrong_and_charges_no_precision():
    # gold Joy, Joy, Anger, Neutral; predicted Joy, (none), Anger, Joy.
    # Joy: tp 1, fp 1 (the Neutral record), fn 1 (the unreadable one) -> F1 1/2; Anger: F1 1; Neutral: 0;
    # the four absent labels have no F1. Accuracy 2/4. Weighted (0.5*2 + 1*1 + 0*1) / 4 = 0.5.
    # Macro over the 3 labels present: (0.5 + 1 + 0) / 3 = 0.5.
    out = scores("erc", ["Joy.", "I cannot tell", "Anger.", "Joy."], ["Joy.", "Joy.", "Anger.", "Neutral."])
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["f1_weighted"] == pytest.approx(0.5)
    assert out["f1_macro"] == pytest.approx(0.5)
    assert out["f1_joy"] == pytest.approx(0.5) and out["f1_anger"] == 1.0 and out["f1_neutral"] == 0.0
    assert out["f1_fear"] is None and out["f1_disgust"] is None
    assert (out["unparseable"], out["unparseable_rate"]) == (1, 0.25)


def test_no_answer_leaves_other_classes_precision_alone():
    # gold Joy, Anger; predicted (none), Anger. Anger keeps precision 1 -> F1 1 (a fallback to Anger would
    # give 2/3). Joy F1 0. Weighted (0*1 + 1*1) / 2 = 0.5; macro over Joy and Anger 1/2.
    out = scores("erc", ["", "Anger."], ["Joy.", "Anger."])
    assert out["f1_anger"] == 1.0 and out["f1_joy"] == 0.0
    assert out["f1_weighted"] == pytest.approx(0.5)
    assert out["f1_macro"] == pytest.approx(0.5)
    assert out["accuracy"] == pytest.approx(0.5)


def test_absent_classes_have_no_f1_and_macro_averages_the_present_ones():
    """The issue's case: perfect erc answers on a file without Fear and Disgust."""
    metrics_sk = pytest.importorskip("sklearn.metrics")
    gold = ["Joy.", "Anger.", "Neutral.", "Neutral.", "Sadness.", "Surprise."]
    out = scores("erc", gold, gold)
    assert out["f1_macro"] == 1.0 == metrics_sk.f1_score(gold, gold, average="macro")
    assert out["f1_fear"] is None and out["f1_disgust"] is None and out["f1_joy"] == 1.0
    # A class predicted but never gold is present (its F1 is 0); msa's recall needs gold of the class.
    out = scores("erc", ["Fear.", "Joy."], ["Joy.", "Joy."])
    assert out["f1_fear"] == 0.0 and out["f1_macro"] == pytest.approx((0 + 2 / 3) / 2)
    assert out["f1_macro"] == pytest.approx(
        metrics_sk.f1_score(["Joy", "Joy"], ["Fear", "Joy"], average="macro")
    )
    out = scores("msa", ["Negative."], ["Positive."])
    assert out["recall_positive"] == 0.0 and out["recall_negative"] is None


def test_confusion_rows_gold_columns_predicted_then_no_answer():
    metrics = TaskMetrics("erc")
    metrics.update(["Joy.", "I cannot tell", "Anger.", "Joy."], ["Joy.", "Joy.", "Anger.", "Neutral."])
    labels, matrix = metrics.confusion()
    assert labels == ERC and matrix.shape == (7, 8)
    joy, anger, neutral, no_answer = ERC.index("Joy"), ERC.index("Anger"), ERC.index("Neutral"), 7
    expected = torch.zeros(7, 8, dtype=matrix.dtype)
    expected[joy, joy] = expected[joy, no_answer] = expected[anger, anger] = expected[neutral, joy] = 1
    assert torch.equal(matrix, expected)


def test_weighted_and_macro_f1_match_scikit_learn():
    metrics_sk = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(0)
    gold_idx = torch.randint(0, 7, (300,), generator=generator).tolist()
    pred_idx = torch.randint(0, 9, (300,), generator=generator).tolist()  # 7, 8: unreadable answers
    gold = [f"{ERC[i]}." for i in gold_idx]
    predictions = [f"{ERC[i]}." if i < 7 else "no idea" for i in pred_idx]
    out = scores("erc", predictions, gold)
    # scikit-learn scores a prediction outside labels= as a miss that charges no listed class.
    y_pred = [ERC[i] if i < 7 else "<none>" for i in pred_idx]
    y_true = [ERC[i] for i in gold_idx]
    labels = list(ERC)
    assert out["accuracy"] == pytest.approx(metrics_sk.accuracy_score(y_true, y_pred), abs=1e-6)
    assert out["f1_weighted"] == pytest.approx(
        metrics_sk.f1_score(y_true, y_pred, labels=labels, average="weighted"), abs=1e-6
    )
    # Macro: the real labels present in gold or predictions (scikit-learn's default, without "<none>").
    present = sorted(set(y_true) | set(y_pred) - {"<none>"})
    assert out["f1_macro"] == pytest.approx(
        metrics_sk.f1_score(y_true, y_pred, labels=present, average="macro"), abs=1e-6
    )
    per_class = metrics_sk.f1_score(y_true, y_pred, labels=labels, average=None)
    assert [out[f"f1_{label.lower()}"] for label in ERC] == pytest.approx(list(per_class), abs=1e-6)


# (source score, prediction); gold is Positive iff score >= 0.
MSA = [(2.0, "Positive."), (0.0, "Positive."), (0.0, "Negative."), (-1.0, "Negative."), (-0.4, "hmm"),
       (1.2, "Negative."), (0.0, "positive")]  # fmt: skip


def test_msa_accuracy_recall_and_acc2_under_both_conventions():
    predictions = [p for _, p in MSA]
    gold = ["Negative." if s < 0 else "Positive." for s, _ in MSA]
    out = scores("msa", predictions, gold, [{"score": s} for s, _ in MSA])
    # Right: records 1, 2, 4, 7 -> accuracy 4/7. Positive gold 1, 2, 3, 6, 7 -> 3 right of 5;
    # Negative gold 4, 5 -> 1 of 2.
    assert out["accuracy"] == pytest.approx(4 / 7)
    assert out["recall_positive"] == pytest.approx(0.6) and out["recall_negative"] == pytest.approx(0.5)
    # Negative vs non-negative: every record, same right ones -> 4/7 = 0.5714286.
    assert out["acc2_negative_vs_nonnegative"] == pytest.approx(0.5714286)
    # Negative vs positive: zeros (2, 3, 7) dropped; 1 and 4 right of 1, 4, 5, 6 -> 2/4.
    assert out["acc2_negative_vs_positive"] == pytest.approx(0.5)
    assert out["unparseable"] == 1
    assert "f1_positive" not in out


def test_msa_without_scores_has_no_acc2():
    out = scores("msa", ["Positive."], ["Positive."], [{"score": None}])
    assert "acc2_negative_vs_nonnegative" not in out and "acc2_negative_vs_positive" not in out
    assert "acc2_negative_vs_positive" not in scores("msa", ["Positive."], ["Positive."])
    # Only zero scores: the negative-vs-positive convention has no record.
    out = scores("msa", ["Positive."], ["Positive."], [{"score": 0}])
    assert out["acc2_negative_vs_nonnegative"] == 1.0 and "acc2_negative_vs_positive" not in out


def test_unknown_gold_label_is_named():
    with pytest.raises(ValueError, match="unknown gold label 'Happy.' for task erc"):
        scores("erc", ["Joy."], ["Happy."])

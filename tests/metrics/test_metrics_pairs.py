"""PairF1 under both protocols, on hand-made records; expected values worked out in the comments."""

import pytest

from m2se.metrics import PairF1
from m2se.tasks import TaskMetrics


def pair_scores(predictions, references, protocol="semeval"):
    metric = PairF1(protocol)
    metric.update(predictions, references)
    return {key: None if value is None else value.item() for key, value in metric.compute().items()}


def prf(out):
    return [out["pair_precision"], out["pair_recall"], out["pair_f1"]]


@pytest.mark.parametrize("protocol", ["semeval", "emoverse"])
def test_perfect_predictions_score_one(protocol):
    gold = ["5_surprise,2;5_surprise,5", "9_joy,8", "", "3_anger,2;3_anger,3", "1_fear,1"]
    out = pair_scores(gold, gold, protocol)
    assert out["pair_f1"] == out["pair_f1_weighted"] == out["pair_precision"] == out["pair_recall"] == 1.0
    assert out["pair_f1_surprise"] == out["pair_f1_anger"] == 1.0
    assert out["pair_f1_disgust"] is None and out["pair_f1_sadness"] is None  # no gold, no prediction


def test_semeval_counts_false_positives_on_empty_gold_and_emoverse_skips_them():
    predictions, gold = ["3_joy,1", "2_anger,2"], ["3_joy,1", ""]
    # semeval: tp 1, predicted 2, gold 1 -> P 1/2, R 1, F1 2*1/(2+1) = 0.6666667.
    assert prf(pair_scores(predictions, gold, "semeval")) == pytest.approx([0.5, 1.0, 0.6666667])
    # emoverse: the second record is skipped -> 1, 1, 1.
    assert prf(pair_scores(predictions, gold, "emoverse")) == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize("protocol", ["semeval", "emoverse"])
def test_empty_prediction_predicts_no_pair(protocol):
    # tp 1 (second record), predicted 1, gold 3 -> P 1, R 1/3, F1 2/(1+3) = 0.5. (The released scorer
    # counted "" as one predicted pair.)
    out = pair_scores(["", "4_sadness,4"], ["3_joy,1;3_joy,2", "4_sadness,4"], protocol)
    assert prf(out) == pytest.approx([1.0, 0.3333333, 0.5])


@pytest.mark.parametrize("protocol", ["semeval", "emoverse"])
def test_unparseable_prediction_predicts_no_pair(protocol):
    # "no idea" reads as no pair: tp 1, predicted 1, gold 2 -> P 1, R 1/2, F1 2/3.
    predictions, gold = ["no idea", "4_sadness,4"], ["3_joy,1", "4_sadness,4"]
    assert prf(pair_scores(predictions, gold, protocol)) == pytest.approx([1.0, 0.5, 0.6666667])
    metrics = TaskMetrics("ecpe", protocol)
    metrics.update(predictions, gold)
    out = metrics.compute()
    assert (out["unparseable"], out["unparseable_rate"], out["count"]) == (1, 0.5, 2)
    assert out["pair_f1"] == pytest.approx(0.6666667)


def test_duplicates_semeval_dedups_emoverse_counts_twice():
    predictions, gold = ["3_joy,1;3_joy,1"], ["3_joy,1;3_joy,2"]
    # semeval: {3_joy,1}: tp 1, predicted 1, gold 2 -> 1, 1/2, 2/3.
    assert prf(pair_scores(predictions, gold, "semeval")) == pytest.approx([1.0, 0.5, 0.6666667])
    # emoverse (as released): both copies match: tp 2, predicted 2, gold 2 -> 1, 1, 1.
    assert prf(pair_scores(predictions, gold, "emoverse")) == pytest.approx([1.0, 1.0, 1.0])


def test_malformed_pieces_never_crash():
    predictions, gold = ["3_joy,1;banana;7_fury,2;3,1;_"], ["3_joy,1"]
    # semeval parses: the readable pair stays, the rest is dropped -> 1, 1, 1.
    assert prf(pair_scores(predictions, gold, "semeval")) == pytest.approx([1.0, 1.0, 1.0])
    # emoverse: five pieces, one right -> P 1/5, R 1, F1 2/(5+1) = 1/3. Joy alone: 1.
    out = pair_scores(predictions, gold, "emoverse")
    assert prf(out) == pytest.approx([0.2, 1.0, 0.3333333])
    assert out["pair_f1_joy"] == 1.0 and out["pair_f1_weighted"] == 1.0


@pytest.mark.parametrize("protocol", ["semeval", "emoverse"])
def test_right_utterances_with_the_wrong_emotion_do_not_match(protocol):
    out = pair_scores(["3_anger,1", "4_sadness,4"], ["3_joy,1", "4_sadness,4"], protocol)
    # tp 1, predicted 2, gold 2 -> 1/2, 1/2, 1/2; anger: 0 right of 1 predicted; joy: 0 of 1 gold.
    assert prf(out) == pytest.approx([0.5, 0.5, 0.5])
    assert out["pair_f1_anger"] == out["pair_f1_joy"] == 0.0 and out["pair_f1_sadness"] == 1.0


def test_weighted_f1_uses_each_emotions_share_of_gold_pairs():
    predictions = ["3_joy,1", "5_anger,5;5_anger,4"]
    gold = ["3_joy,1;3_joy,2;3_joy,3", "5_anger,5"]
    out = pair_scores(predictions, gold, "semeval")
    # joy: tp 1, predicted 1, gold 3 -> F1 2/(1+3) = 0.5; anger: tp 1, predicted 2, gold 1 -> 2/3.
    assert out["pair_f1_joy"] == pytest.approx(0.5) and out["pair_f1_anger"] == pytest.approx(0.6666667)
    # weights 3/4 and 1/4: 0.375 + 0.1666667 = 0.5416667 (the macro mean would be 0.5833333).
    assert out["pair_f1_weighted"] == pytest.approx(0.5416667)
    # micro: tp 2, predicted 3, gold 4 -> 2/3, 1/2, 4/7 = 0.5714286.
    assert prf(out) == pytest.approx([0.6666667, 0.5, 0.5714286])
    assert out == pytest.approx(pair_scores(predictions, gold, "emoverse"))


def test_neutral_pairs_count_only_under_emoverse():
    predictions, gold = ["3_joy,1;3_neutral,1"], ["3_joy,1"]
    # semeval ignores neutral pairs (as its official scorer): 1, 1, 1.
    assert prf(pair_scores(predictions, gold, "semeval")) == pytest.approx([1.0, 1.0, 1.0])
    # emoverse counts every piece in the micro scores: P 1/2, R 1, F1 2/3.
    assert prf(pair_scores(predictions, gold, "emoverse")) == pytest.approx([0.5, 1.0, 0.6666667])


def test_unknown_protocol_is_named():
    with pytest.raises(ValueError, match="unknown ECPE protocol 'codalab'"):
        PairF1("codalab")
    with pytest.raises(ValueError, match="unknown ECPE protocol 'codalab'"):
        TaskMetrics("ecpe", "codalab")


def test_records_the_protocol_leaves_out_are_counted():
    predictions, gold = ["3_joy,1", "2_anger,2", ""], ["3_joy,1", "", " "]
    assert pair_scores(predictions, gold, "emoverse")["excluded_by_protocol"] == 2
    assert pair_scores(predictions, gold, "semeval")["excluded_by_protocol"] == 0

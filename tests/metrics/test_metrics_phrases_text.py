"""fer (phrase sets) and eri (ROUGE-L, BLEU-4) through TaskMetrics."""

import pytest

from m2se.tasks import TaskMetrics


def scores(task, predictions, references):
    metrics = TaskMetrics(task)
    metrics.update(predictions, references)
    return metrics.compute()


def test_fer_perfect_and_order_case_punctuation_free():
    out = scores("fer", ["slightly puzzled;  eyes narrowing."], ["Eyes narrowing; Slightly puzzled"])
    assert out["phrase_precision"] == out["phrase_recall"] == out["phrase_f1"] == out["exact_match"] == 1.0


def test_fer_phrases_compare_as_sets_micro_over_records():
    predictions = ["Eyes narrowing; Eyes narrowing; Smiling", "", "cheeks raised. ; smiling"]
    gold = ["Eyes narrowing; Slightly puzzled", "Frowning", "Smiling; Cheeks raised"]
    out = scores("fer", predictions, gold)
    # 1: {eyes narrowing, smiling} vs 2 gold -> tp 1, predicted 2, gold 2 (the duplicate counts once).
    # 2: no answer -> tp 0, predicted 0, gold 1.   3: equal sets -> 2, 2, 2.
    # Totals tp 3, predicted 4, gold 5: P 0.75, R 0.6, F1 6/9; exact 1/3.
    assert out["phrase_precision"] == pytest.approx(0.75) and out["phrase_recall"] == pytest.approx(0.6)
    assert out["phrase_f1"] == pytest.approx(0.6666667) and out["exact_match"] == pytest.approx(0.3333333)
    assert (out["unparseable"], out["count"]) == (1, 3)


REASON = (
    "The person looks tense and speaks slowly, with lowered brows and a tight mouth, so the emotional "
    "state is sadness caused by the loss she describes."
)


def test_eri_perfect_is_one_and_unrelated_is_low():
    assert scores("eri", [REASON], [REASON])["rougeL"] == pytest.approx(1.0)
    assert scores("eri", [REASON], [REASON])["bleu4"] == pytest.approx(1.0)
    unrelated = scores("eri", ["Quarterly revenue grew by four percent across all regions."], [REASON])
    assert unrelated["rougeL"] < 0.2 and unrelated["bleu4"] < 0.2


def test_eri_rouge_l_by_hand_and_empty_answer():
    # LCS of "the cat sat on the mat" / "the cat lay on the mat" is 5 of 6 words: F = 5/6.
    out = scores("eri", ["The cat sat on the mat.", ""], ["the cat lay on the mat", REASON])
    # Mean over records: (5/6 + 0) / 2 = 0.4166667; the empty answer is unparseable.
    assert out["rougeL"] == pytest.approx(0.4166667)
    assert (out["unparseable"], out["unparseable_rate"]) == (1, 0.5)


def test_fer_blank_gold_has_no_phrase():
    # Gold " ; " reads as no phrase (not as its characters): predicted 1, gold 0 -> P 0, R 0.
    out = scores("fer", ["Smiling"], [" ; "])
    assert (out["phrase_precision"], out["phrase_recall"], out["exact_match"]) == (0.0, 0.0, 0.0)

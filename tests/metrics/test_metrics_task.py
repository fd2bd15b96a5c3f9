"""TaskMetrics plumbing (keys, counts, reset, errors) and the trivial baselines."""

import pytest

from m2se.tasks import TASKS, TaskMetrics
from m2se.tasks import self_cause as self_cause_baseline
from m2se.tasks.prediction import Prediction
from m2se.templates import Utterance, ecpe_query


def majority_baseline(references, task):
    return TASKS[task].baseline(
        "majority", [Prediction(task, f"r{i}", "", r) for i, r in enumerate(references)]
    )


# (prediction, gold, an answer the task cannot read)
EXAMPLES = {
    "msa": ("Negative.", "Positive.", "Maybe."),
    "mer": ("Happy.", "Sadness.", "happy or sad"),
    "erc": ("Joy.", "Neutral.", "\u2026"),
    "fer": ("Smiling", "Eyes narrowing; Smiling", " ; "),
    "eri": ("She smiles because she won.", "She smiles because she won the game.", "\n"),
    "ecpe": ("3_joy,3", "3_joy,1;3_joy,3", "the third one"),
}


@pytest.mark.parametrize("task", sorted(EXAMPLES))
def test_every_task_counts_records_and_unparseable_answers(task):
    prediction, gold, unreadable = EXAMPLES[task]
    metrics = TaskMetrics(task)
    metrics.update([prediction, unreadable], [gold, gold])
    out = metrics.compute()
    assert (out["count"], out["unparseable"], out["unparseable_rate"]) == (2, 1, 0.5)
    assert all(value is None or isinstance(value, (int, float)) for value in out.values())
    metrics.reset()
    metrics.update([gold], [gold])
    assert (metrics.compute()["count"], metrics.compute()["unparseable"]) == (1, 0)


def test_updates_accumulate_across_batches():
    metrics = TaskMetrics("erc")
    metrics.update(["Joy."], ["Joy."])
    metrics.update([], [])
    metrics.update(["Joy."], ["Anger."])
    assert metrics.compute()["accuracy"] == 0.5


def test_mismatched_lengths_and_missing_confusion_are_named():
    with pytest.raises(ValueError, match="erc: 1 predictions, 2 references"):
        TaskMetrics("erc").update(["Joy."], ["Joy.", "Joy."])
    with pytest.raises(ValueError, match="task ecpe has no confusion matrix"):
        TaskMetrics("ecpe").confusion()


def test_majority_baseline():
    # The first gold string of the majority label, as written (every parse mode then reads it).
    assert majority_baseline(["Joy.", "neutral", "Neutral.", "Anger."], "erc") == ["neutral"] * 4
    assert majority_baseline(["happy", "sad", "happy"], "mer2023") == ["happy"] * 3
    # A tie goes to the task's label order (Anger before Joy in erc).
    assert majority_baseline(["Joy.", "Anger."], "erc") == ["Anger."] * 2
    assert majority_baseline(["", "1_joy,1", ""], "ecpe") == [""] * 3
    assert majority_baseline([], "erc") == []


def test_self_cause_baseline_reads_the_target_line():
    conversation = [Utterance("Ross", "Hi.", "neutral"), Utterance("Rachel", "You came!", "joy")]
    assert self_cause_baseline([ecpe_query(conversation, 2)]) == ["2_joy,2"]
    with pytest.raises(ValueError, match="query 0: no 'Target utterance"):
        self_cause_baseline(["The person says: 'hi' <emotion> ..."])
    with pytest.raises(ValueError, match="ecpe.json:7: no 'Target utterance"):
        self_cause_baseline(["The person says: 'hi' <emotion> ..."], ["ecpe.json:7"])


def rows(task, references, queries=None):
    queries = queries or [""] * len(references)
    return [Prediction(task, f"r{i}", q, r) for i, (q, r) in enumerate(zip(queries, references, strict=True))]


def test_ecpe_self_and_previous_baseline_adds_the_utterance_before():
    conversation = [Utterance("Ross", "Hi.", "joy"), Utterance("Rachel", "You came!", "joy")]
    queries = [ecpe_query(conversation, 1), ecpe_query(conversation, 2)]
    assert TASKS["ecpe"].baseline("self_previous", rows("ecpe", ["", ""], queries)) == [
        "1_joy,1",
        "2_joy,2;2_joy,1",
    ]
    assert TASKS["ecpe"].answer.baselines == ("self_cause", "self_previous")


def test_fer_majority_is_the_most_frequent_phrase_set_in_any_order():
    references = ["Smiling; eyes widening", "Jaw dropping", "eyes widening; smiling", "Jaw dropping; smiling"]
    assert TASKS["fer"].baseline("majority", rows("fer", references)) == ["Smiling; eyes widening"] * 4


def test_eri_constant_is_the_gold_text_closest_to_the_others():
    references = [
        "the sky is blue today",
        "a red car drove by",
        "the sky is grey today",
        "the sea is blue today",
    ]
    assert TASKS["eri"].baseline("constant", rows("eri", references)) == ["the sky is blue today"] * 4
    assert TASKS["eri"].baseline("constant", []) == []
    with pytest.raises(ValueError, match="no nope baseline"):
        TASKS["eri"].baseline("nope", rows("eri", references))


def test_majority_is_written_so_that_the_parse_mode_reads_it():
    references = ["anger", "anger", "Joy."]  # a predictions file's gold, not written as the release writes it
    assert TASKS["erc"].baseline("majority", rows("erc", references), "exact") == ["anger"] * 3
    assert TASKS["erc"].baseline("majority", rows("erc", references), "emoverse") == ["Anger."] * 3


def test_eri_constant_needs_two_texts_and_fer_gold_needs_a_phrase():
    with pytest.raises(ValueError, match="at least two gold texts"):
        TASKS["eri"].baseline("constant", rows("eri", ["only one"]))
    assert "no phrases" in TASKS["fer"].check_response(" ; ;")
    assert TASKS["fer"].check_response("Smiling") is None

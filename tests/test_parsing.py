"""Parse modes: named by what they do, and reference modes that score like the published scorers."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score

from m2se.parsing import PARSE_MODES, check_parse_mode
from m2se.tasks import TASKS, TaskMetrics

# One answer per row, read by each mode (None: unparseable). The note's table comes from here.
EXAMPLES = {
    # task, answer: exact, contains, nearest, emotion_llama, emoverse
    ("erc", "Joy."): ("Joy", "Joy", "Joy", "Joy", "Joy"),
    ("erc", "joy"): ("Joy", "Joy", "Joy", "Joy", None),
    ("erc", "The emotion is joy."): (None, "Joy", "Joy", None, None),
    ("erc", "Joyful."): (None, None, "Joy", None, None),
    ("mer2023", "happy"): ("happy", "happy", "happy", "happy", "happy"),
    ("mer2023", "happy."): ("happy", "happy", "happy", "neutral", "happy"),
    ("mer2023", "Angry"): ("angry", "angry", "angry", "neutral", "angry"),
    ("mer2023", "The person is sad"): (None, "sad", "surprise", "sad", None),  # nearest by edits
    ("msa", "positive"): ("Positive", "Positive", "Positive", "Positive", "Negative"),
}


@pytest.mark.parametrize(("task", "answer"), list(EXAMPLES))
def test_each_mode_reads_what_its_name_says(task, answer):
    got = tuple(TASKS[task].parse(answer, mode=mode) for mode in PARSE_MODES)
    assert got == EXAMPLES[task, answer]


def test_reference_modes_apply_only_to_their_tasks_and_old_names_point_to_new_ones():
    assert TASKS["mer2023"].parse_mode("emotion_llama") == "emotion_llama"
    assert TASKS["erc"].parse_mode("emotion_llama") == "exact"  # Emotion-LLaMA never scored MELD
    assert (
        TASKS["erc"].parse_mode("emoverse") == "emoverse"
        and TASKS["mer2023"].parse_mode("emoverse") == "exact"
    )
    with pytest.raises(ValueError, match="'strict' was renamed: use 'contains'"):
        check_parse_mode("strict")
    with pytest.raises(ValueError, match="'last_word' was renamed: use 'emotion_llama'"):
        check_parse_mode("last_word")
    with pytest.raises(ValueError, match="unknown parse mode 'loose'"):
        TaskMetrics("erc", parse="loose")


MER2023 = TASKS["mer2023"].labels


def emotion_llama_scorer(answers, targets):
    """Emotion-LLaMA's eval_emotion.py, as its loop reads: last space-separated piece, unknown → neutral."""
    answers = [a.split(" ")[-1] for a in answers]
    targets = [t.split(" ")[-1] for t in targets]
    answers = [a if a in MER2023 else "neutral" for a in answers]
    return accuracy_score(targets, answers), f1_score(targets, answers, average="weighted")


def variants(label):
    return st.sampled_from(
        [
            label,
            label.title(),
            f"{label}.",
            f"{label}\n",
            f"The person feels {label}",
            f"{label} ",
            "I am unsure",
        ]
    )


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(MER2023).flatmap(lambda g: st.tuples(st.just(g), variants(g))), min_size=1))
def test_emotion_llama_mode_reproduces_its_scorer(pairs):
    targets, answers = [g for g, _ in pairs], [a for _, a in pairs]
    metrics = TaskMetrics("mer2023", parse="emotion_llama")
    metrics.update(answers, targets)
    out = metrics.compute()
    accuracy, f1 = emotion_llama_scorer(answers, targets)
    assert out["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert out["f1_weighted"] == pytest.approx(f1, abs=1e-6)
    assert out["unparseable"] == 0
    assert out["fallback_answers"] == sum(a.split(" ")[-1] not in MER2023 for a in answers)


def emoverse_msa_scorer(answers, targets):
    """EmoVerse's released msa rule: the exact label string, anything else read as Negative."""
    read = [a.strip() if a.strip() in ("Positive.", "Negative.") else "Negative." for a in answers]
    return accuracy_score(targets, read), f1_score(targets, read, average="weighted")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.lists(
        st.sampled_from(["Positive.", "Negative."]).flatmap(
            lambda g: st.tuples(
                st.just(g), st.sampled_from([g, g.lower(), g[:-1], f" {g}\n", "Neutral.", ""])
            )
        ),
        min_size=1,
    )
)
def test_emoverse_mode_reproduces_the_released_msa_rule(pairs):
    targets, answers = [g for g, _ in pairs], [a for _, a in pairs]
    metrics = TaskMetrics("msa", parse="emoverse")
    metrics.update(answers, targets)
    out = metrics.compute()
    accuracy, f1 = emoverse_msa_scorer(answers, targets)
    assert out["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert out["f1_weighted"] == pytest.approx(f1, abs=1e-6)
    assert out["fallback_answers"] == sum(a.strip() not in ("Positive.", "Negative.") for a in answers)


def test_emoverse_mode_counts_what_the_release_crashed_on_as_unparseable():
    metrics = TaskMetrics("erc", parse="emoverse")
    metrics.update(["Joy.", "joy.", "Happy."], ["Joy.", "Joy.", "Joy."])
    out = metrics.compute()
    assert (
        out["accuracy"] == pytest.approx(1 / 3) and out["unparseable"] == 2 and out["fallback_answers"] == 0
    )


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=30), st.text(max_size=12))
def test_edit_distance_is_torchmetrics(a, b):
    from torchmetrics.functional.text import edit_distance as reference

    from m2se.parsing import edit_distance

    assert edit_distance(a, b) == int(reference([a], [b]))


def test_nearest_is_quick_on_a_huge_answer():
    # 200,000 characters against erc's labels: a few seconds at worst (torchmetrics: minutes).
    assert TASKS["erc"].parse("joy " * 50_000, mode="nearest") in TASKS["erc"].labels

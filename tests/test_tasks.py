import pytest
from hypothesis import given
from hypothesis import strategies as st

from m2se.tasks import (
    ECPE_EMOTIONS,
    EMOVERSE_TASKS,
    TASKS,
    Acc2,
    Labels,
    Task,
    TaskMetrics,
    get_task,
    infer_task,
    parse_pairs,
)
from m2se.templates import Utterance, ecpe_query

CLASSIFICATION = [t for t in TASKS.values() if t.kind == "classification" and not t.open_labels]


def test_tasks_with_distinct_instructions():
    assert list(TASKS)[:6] == list(EMOVERSE_TASKS) == ["msa", "mer", "erc", "fer", "eri", "ecpe"]
    assert set(TASKS) - set(EMOVERSE_TASKS) == {"erc_dialog", "speaker_id", "emotion_predict", "mer2023"}
    assert len({t.instruction for t in TASKS.values()}) == len(TASKS)


@pytest.mark.parametrize(
    "task", [TASKS[t] for t in EMOVERSE_TASKS if TASKS[t].kind != "pairs"], ids=lambda t: t.name
)
def test_query_layout_and_inference(task):
    query = task.query("I do not know.")
    assert query == f"The person says: 'I do not know.' {task.identifier} {task.instruction}"
    assert infer_task(query) == task.name


def test_infer_ecpe_and_unknown():
    conversation = [Utterance("A", "Hi .", "joy"), Utterance("B", "Oh no .", "sadness")]
    query = ecpe_query(conversation, 2)
    assert infer_task(query) == "ecpe"
    assert "Candidate utterances:1_joy. A: Hi .\nTarget utterance:2_sadness. B: Oh no ." in query
    assert "Candidate utterances:\nTarget utterance:1_joy" in ecpe_query(conversation, 1)
    assert infer_task("What is the weather like?") is None
    # mer and erc share the identifier; only the instruction tells them apart.
    assert infer_task("The person says: 'x' <emotion> something else") is None


@pytest.mark.parametrize("task", CLASSIFICATION, ids=lambda t: t.name)
@given(data=st.data())
def test_label_round_trip_with_noise(task, data):
    label = data.draw(st.sampled_from(task.labels))
    assert task.parse(task.format(label)) == label
    case = data.draw(st.sampled_from([str.lower, str.upper, str.title]))
    pad = data.draw(st.sampled_from(["", " ", "\n", "  \t"]))
    punct = data.draw(st.sampled_from(["", ".", "!", "..."]))
    assert task.parse(pad + case(label) + punct + pad) == label
    assert task.parse(f"The answer is {label.lower()}.", mode="contains") == label
    assert task.parse(f"The answer is {label.lower()}.") is None  # exact: the whole answer is the label


@pytest.mark.parametrize("task", CLASSIFICATION, ids=lambda t: t.name)
@given(text=st.text(max_size=60))
def test_classification_parser_never_raises(task, text):
    assert task.parse(text) in (*task.labels, None)


def test_classification_ambiguous_and_aliases():
    erc, mer = get_task("erc"), get_task("mer")
    assert erc.parse("joy or anger") is None
    assert erc.parse("") is None
    assert mer.parse("sad") == "Sadness"
    assert erc.parse("Happy.") is None  # MOSEI's label is not a MELD label
    assert erc.check_response("Joyful.").startswith("unknown label 'Joyful.' for task erc")
    assert erc.check_response("joy") is None


pairs = st.lists(
    st.tuples(st.integers(1, 40), st.sampled_from(ECPE_EMOTIONS), st.integers(1, 40)), max_size=6
)


@given(triples=pairs)
def test_ecpe_round_trip(triples):
    ecpe = get_task("ecpe")
    text = ecpe.format(triples)
    assert ecpe.parse(text) == triples
    assert ecpe.check_response(text) is None


@given(text=st.text(max_size=80))
def test_ecpe_parser_never_raises(text):
    result = parse_pairs(text)
    assert result is None or all(isinstance(t, int) and isinstance(c, int) for t, _, c in result)


def test_ecpe_survives_malformed_pieces():
    assert parse_pairs("11_fear,9;11_fear,11") == [(11, "fear", 9), (11, "fear", 11)]
    assert parse_pairs("answer: 3_Surprise ,1; junk; 4_joy,2.") == [(3, "surprise", 1), (4, "joy", 2)]
    assert parse_pairs("") == []
    assert parse_pairs("no cause") is None
    assert parse_pairs("3_happy,1") is None  # not an ECF emotion
    assert parse_pairs("3_joy,1;junk", strict=True) is None
    assert get_task("ecpe").check_response("3_joy,1;junk").startswith("malformed emotion-cause pairs")


@given(text=st.text(min_size=1, max_size=40).filter(lambda s: ";" not in s and s.strip()))
def test_fer_phrases_round_trip(text):
    fer = get_task("fer")
    parsed = fer.parse(text)
    if parsed is not None:
        assert fer.parse(fer.format(parsed)) == parsed


def test_fer_and_eri_parse():
    fer, eri = get_task("fer"), get_task("eri")
    assert fer.parse("Eyes narrowing; Slightly puzzled.") == ("eyes narrowing", "slightly puzzled")
    assert fer.parse(" ; ") is None
    assert eri.parse("  The person is   sad.\n") == "The person is sad."
    assert eri.check_response("") == "empty response for task eri"


def test_get_task_names_the_unknown():
    with pytest.raises(ValueError, match="unknown task 'sentiment'"):
        get_task("sentiment")


MAIN = (
    "Now you are expert of sentiment and emotional analysis. The following conversation noted between "
    '\'### ###\' involves several speakers. ### \t Speaker_0:"Hi."\t Speaker_1:"Go away!" ### Please select '
    'the emotional label of < Speaker_1:"Go away!"> from <neutral, surprise, fear, sad, joyful, disgust, angry>:'
)
SPEAKER = (
    "Now you are expert of sentiment and emotional analysis. Please select the Speaker label of the utterance "
    "<Speaker: Go away!> from <Speaker_0, Speaker_1>:"
)
PREDICT = (
    "Now you are expert of sentiment and emotional analysis. The following conversation noted between "
    "'### ###' involves several speakers. ### \t Speaker_0:\"Hi.\"###Based on the above historical utterances, "
    "next utterance is spoken by <1>, please predict the emotion states of <1> from <happy, sad>:"
)


@pytest.mark.parametrize(
    "query,task",
    [
        (MAIN, "erc_dialog"),
        (SPEAKER, "speaker_id"),
        (PREDICT, "emotion_predict"),
        (
            "Conversation context:\nSpeaker_0: Hi.\nThe person says: 'x' <emotion> Please determine which "
            "emotion label in the video represents: joyful or sad.",
            "erc_dialog",
        ),
    ],
)
def test_dialogue_queries_are_recognised(query, task):
    assert infer_task(query) == task


def test_open_label_tasks_parse_against_the_record_labels():
    task = TASKS["erc_dialog"]
    labels = ["Joyful", "Mad", "Neutral"]
    assert task.parse("mad.", labels) == "Mad" and task.parse("happy", labels) is None
    assert task.parse("Madd", labels, mode="nearest") == "Mad"
    assert task.check_response("anything") is None and task.check_response("  ") is not None
    with pytest.raises(ValueError, match="m2se.dialogue.prompts"):
        task.query("x")
    assert not task.needs_media and TASKS["erc"].needs_media


def test_mer2023_prompt_and_emotion_llama_rule():
    task = TASKS["mer2023"]
    query = task.query("I lost my keys")
    assert query == (
        "The person in video says: I lost my keys.  [emotion] Please determine which emotion label in the "
        "video represents: happy, sad, neutral, angry, worried, surprise, fear, contempt, doubt. "
    )
    assert infer_task(query) == "mer2023"
    assert task.parse("The person feels worried", mode="emotion_llama") == "worried"
    assert (
        task.parse("The person feels worried.", mode="emotion_llama") == "neutral"
    )  # "worried." is no label
    assert task.parse("contempt", mode="emotion_llama") == "neutral"  # outside the six labels
    assert task.parse("contempt") is None and task.parse("") is None
    assert task.parse("", mode="emotion_llama") == "neutral"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Labels(("Joy", "joy")), "'Joy' and 'joy' read the same once normalised"),
        (lambda: Labels(("A", "A", "B")), "'A' and 'A' read the same"),
        (lambda: Labels(("?", "Yes")), "'\\?' is empty once normalised"),
        (lambda: Labels("ABC"), "labels must be a tuple of strings"),
        (lambda: Labels(("A",)), "at least two labels"),
        (lambda: Labels(("A", "B"), fallback="C"), "fallback 'C' is not one of the labels"),
        (lambda: Labels(("A", "B"), {"a1": "C"}), "aliases point to \\['C'\\]"),
        (lambda: Labels(("A", "B"), reference_modes=("strict",)), "not reference parse modes"),
        (lambda: Task("../x", Labels(("A", "B")), "I", "<z>"), "task name '../x'"),
        (lambda: Task("all", Labels(("A", "B")), "I", "<z>"), "task name 'all'"),
        (lambda: Task("x", "labels", "I", "<z>"), "answer must be an answer format"),
        (lambda: Task("x", Labels(("A", "B")), "", "<z>"), "instruction must be a non-empty string"),
        (lambda: Task("x", Labels(("A", "B")), "I", "<z>", max_new_tokens=-1), "max_new_tokens must be in"),
        (
            lambda: Task("x", Labels(("A", "B")), "I", "<z>", max_new_tokens="8"),
            "max_new_tokens must be an int",
        ),
        (
            lambda: Task("x", Labels(("A", "B")), "I", "<z>", template="{foo} {utterance}"),
            "template may hold only",
        ),
        (
            lambda: Task("x", Labels(("A", "B")), "I", "<z>", metrics=("accuracy",)),
            "metrics must be a tuple of scorers",
        ),
        (
            lambda: TaskMetrics(Task("x", Labels(("pos", "neg")), "I", "<z>", metrics=(Acc2(),))),
            "Acc2 reads the labels",
        ),
        (lambda: TaskMetrics(None), "TaskMetrics takes a task name or Task"),
        (lambda: TaskMetrics("msa", parse=["exact"]), "parse must be a parse mode name"),
    ],
)
def test_a_task_that_could_not_work_is_refused_where_it_is_made(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_metrics_refuse_strings_for_lists_and_unscorable_metadata():
    metrics = TaskMetrics("msa")
    with pytest.raises(TypeError, match="sequences of strings, not a string"):
        metrics.update("Positive.", "Positive.")
    with pytest.raises(TypeError, match="every reference must be a gold answer string"):
        metrics.update(["Positive."], [None])
    with pytest.raises(ValueError, match="msa: 'score' must be a finite number"):
        metrics.update(["Positive."], ["Positive."], [{"score": float("nan")}])

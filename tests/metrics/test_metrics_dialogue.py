"""Dialogue ERC scores: per corpus, in native labels, whatever label space the prompt used."""

import pytest
from sklearn.metrics import f1_score

from m2se.dialogue.labels import NATIVE, UNIFIED, to_native, to_unified, unified_labels
from m2se.evaluation import score
from m2se.tasks import TaskMetrics

MELD = list(NATIVE["meld"])


def meld_meta(gold: str, space: str = "native") -> dict:
    labels = MELD if space == "native" else list(unified_labels("meld"))
    return {"dataset": "meld", "labels": labels, "label_space": space, "native": gold}


def test_unified_map_is_one_to_one_per_corpus_and_inverts():
    for corpus, mapping in UNIFIED.items():
        assert len(set(mapping.values())) == len(mapping) == len(NATIVE[corpus])
        assert all(to_native(corpus, to_unified(corpus, label)) == label for label in NATIVE[corpus])
    assert to_unified("meld", "surprise") == "powerful" and to_unified("emorynlp", "Scared") == "fear"
    assert to_native("meld", "excited") is None  # MELD has no excited
    with pytest.raises(ValueError, match="'joy' is not a meld label"):
        to_unified("meld", "joy")


GOLD = ["neutral", "joyful", "angry", "surprise", "sad", "neutral"]
ANSWERS = ["neutral", "joyful", "sad", "fear", "sad", "what"]  # the last is no label


def test_native_and_unified_runs_report_the_same_native_scores():
    native = TaskMetrics("erc_dialog")
    native.update(ANSWERS, GOLD, [meld_meta(g) for g in GOLD])
    unified = TaskMetrics("erc_dialog")
    answers = [to_unified("meld", a) if a in MELD else a for a in ANSWERS]
    unified.update(answers, [to_unified("meld", g) for g in GOLD], [meld_meta(g, "unified") for g in GOLD])
    a, b = native.compute(), unified.compute()
    assert a == b
    expected = f1_score(GOLD, [x if x in MELD else "none" for x in ANSWERS], labels=MELD, average="weighted")
    assert a["meld/f1_weighted"] == pytest.approx(expected) and a["f1_weighted"] == a["meld/f1_weighted"]
    assert a["meld/accuracy"] == pytest.approx(3 / 6) and a["unparseable"] == 1


def test_corpora_are_scored_apart_and_averaged():
    metrics = TaskMetrics("erc_dialog")
    metrics.update(["joyful"], ["joyful"], [meld_meta("joyful")])
    emory = {"dataset": "emorynlp", "labels": list(NATIVE["emorynlp"]), "native": "Mad"}
    metrics.update(["Joyful"], ["Mad"], [emory])
    out = metrics.compute()
    assert out["meld/accuracy"] == 1 and out["emorynlp/accuracy"] == 0 and out["accuracy"] == 0.5
    assert "emorynlp/f1_mad" in out  # several corpora: no single confusion matrix
    with pytest.raises(ValueError, match="one corpus"):
        metrics.confusion()


def test_nearest_parsing_recovers_near_misses_exact_counts_them():
    rows = [{"label": "joyful", "meta": meld_meta("joyful")}, {"label": "sad", "meta": meld_meta("sad")}]
    exact = score("erc_dialog", ["joyfull", "sadness!"], rows)
    nearest = score("erc_dialog", ["joyfull", "sadness!"], rows, parse="nearest")
    assert exact.metrics["unparseable"] == 2 and exact.metrics["accuracy"] == 0
    assert nearest.metrics["unparseable"] == 0 and nearest.metrics["accuracy"] == 1
    assert [r.parsed for r in nearest.rows] == ["joyful", "sad"]


def test_records_without_corpus_keys_are_a_clear_error():
    with pytest.raises(ValueError, match="erc_dialog records need 'dataset' and 'labels'"):
        TaskMetrics("erc_dialog").update(["sad"], ["sad"], [{}])


def test_mer2023_emotion_llama_rule():
    gold = ["happy", "worried", "sad"]
    answers = ["I think the person is happy", "fear", "sad."]
    exact = TaskMetrics("mer2023")
    exact.update(answers, gold)
    reference = TaskMetrics("mer2023", parse="emotion_llama")
    reference.update(answers, gold)
    e, r = exact.compute(), reference.compute()
    # exact: only "sad." reads (as sad); emotion_llama: the last pieces happy, fear → neutral, "sad." → neutral
    assert e["unparseable"] == 2 and r["unparseable"] == 0 and r["fallback_answers"] == 2
    assert e["accuracy"] == r["accuracy"] == pytest.approx(1 / 3)
    expected = f1_score(gold, ["happy", "neutral", "neutral"], average="weighted")
    assert r["f1_weighted"] == pytest.approx(expected)

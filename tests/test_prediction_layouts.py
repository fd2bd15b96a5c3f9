"""Other tools' prediction files (ms-swift 3.x, LLaMA-Factory) are re-scored like ms-swift 2.x ones.

The fixtures follow the tools' documented output: ms-swift 3.x ``swift infer --result_path`` rows carry
the conversation in ``messages``, the answer in ``response`` and the gold in ``labels``; LLaMA-Factory's
``generated_predictions.jsonl`` rows carry the decoded templated ``prompt``, ``predict`` and ``label``.
"""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from evaluate import evaluate
from m2se.data.records import RecordError
from m2se.predictions import read_predictions
from m2se.tasks import TASKS
from m2se.templates import Utterance, ecpe_query

CONF = Path(__file__).resolve().parents[1] / "conf"
ERC = TASKS["erc"].query("Oh my God!")
ECPE = ecpe_query([Utterance("A", "Hi .", "joy"), Utterance("B", "Oh no .", "sadness")], 2)


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(out: Path, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("evaluate", overrides=[f"output_dir={out}", *overrides])


def swift3(query: str, response: str, labels: str | None, clip: str, closing: bool = False) -> dict:
    messages = [{"role": "system", "content": "You are an sentiment and emotion analysis expert."}]
    messages.append({"role": "user", "content": f"<video>{query}"})
    if closing:  # no labels key: the dataset's own assistant turn
        messages.append({"role": "assistant", "content": labels})
    row = {"messages": messages, "videos": [{"path": clip}], "response": response}
    return row if closing else {**row, "labels": labels}


def llamafactory(query: str, predict: str, label: str) -> dict:
    system = "You are an sentiment and emotion analysis expert."
    return {"prompt": f"system\n{system}\nuser\n{query}\nassistant\n", "predict": predict, "label": label}


def test_ms_swift_3_rows_read_as_their_query_media_and_gold(tmp_path):
    rows = [
        swift3(ERC, "Joy.", "Joy.", "dia1_utt1.mp4"),
        swift3(ERC, "Anger.", "Surprise.", "dia1_utt2.mp4", closing=True),
        swift3(ECPE, "2_sadness,1", "2_sadness,2", "dia1_utt3.mp4"),
    ]
    read = read_predictions(jsonl(tmp_path / "swift3.jsonl", rows), None)
    erc = read.rows["erc"]
    assert [(r.query, r.response, r.label, r.media) for r in erc] == [
        (ERC, "Joy.", "Joy.", ["dia1_utt1.mp4"]),
        (ERC, "Anger.", "Surprise.", ["dia1_utt2.mp4"]),
    ]
    assert read.rows["ecpe"][0].label == "2_sadness,2" and "messages" not in erc[0].meta
    results = evaluate(config(tmp_path / "o", f"predictions={tmp_path / 'swift3.jsonl'}"))
    assert results["erc"].metrics["accuracy"] == 0.5 and results["ecpe"].metrics["count"] == 1


def test_a_null_labels_is_no_gold_even_with_the_answer_appended_to_messages(tmp_path):
    row = swift3(ERC, "Joy.", None, "a.mp4")
    row["messages"].append({"role": "assistant", "content": "Joy."})  # later releases append the answer
    with pytest.raises(RecordError, match="'label' \\(the gold answer\\) is missing"):
        read_predictions(jsonl(tmp_path / "p.jsonl", [row]), "erc")


def test_llama_factory_rows_read_their_prompt_as_the_query(tmp_path):
    rows = [llamafactory(ERC, "Joy.", "Joy."), llamafactory(ECPE, "2_sadness,2", "2_sadness,2")]
    path = jsonl(tmp_path / "generated_predictions.jsonl", rows)
    read = read_predictions(path, None)
    assert set(read.rows) == {"erc", "ecpe"}  # inferred from the templated prompt
    assert read.rows["ecpe"][0].query == ECPE  # the template's head and tail cut off
    results = evaluate(config(tmp_path / "o", f"predictions={path}"))
    assert results["erc"].metrics["accuracy"] == 1.0 and results["ecpe"].metrics["pair_f1"] == 1.0


def test_an_unknown_layout_names_the_layouts_it_knows(tmp_path):
    path = jsonl(tmp_path / "p.jsonl", [{"text": "x", "output": "Joy."}])
    with pytest.raises(
        RecordError,
        match=r"p.jsonl:1: no known prediction layout fits keys \(output, text\); known: ms-swift 2.x",
    ):
        read_predictions(path, "erc")
    broken = jsonl(tmp_path / "q.jsonl", [{"messages": "hi", "response": "Joy."}])
    with pytest.raises(RecordError, match="q.jsonl:1: 'messages' must be a list of"):
        read_predictions(broken, "erc")

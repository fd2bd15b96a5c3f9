import json
import re
from collections import defaultdict

import pytest
from test_build_cli import build, built, one_error_line

from m2se.sources.ecf import e2e_query
from m2se.tasks import infer_task
from m2se.templates import Utterance

PREFIX = "ECF2/subtask2_test/"
LINE = re.compile(r"(\d+)_([a-z]+)\. (.*?): (.*)")


def reconstruct(released: list[dict]) -> list[dict]:
    """The SemEval subtask-2 JSON behind the released ECPE records: conversations from the query lines,
    dialogues from the clip names ``dia{D}utt{U}.mp4``, pairs from the responses."""
    dialogues: dict[str, dict[int, dict]] = defaultdict(dict)
    for record in released:
        d, u = re.fullmatch(rf"{PREFIX}dia(\d+)utt(\d+)\.mp4", record["videos"][0]).groups()
        dialogues[d][int(u)] = record
    out = []
    for d, by_target in dialogues.items():
        query = next(iter(by_target.values()))["query"]
        lines = query.split("Input conversation:")[1].split("\nCandidate utterances:")[0].split("\n")
        conversation = []
        for line in lines:
            i, emotion, speaker, text = LINE.fullmatch(line).groups()
            conversation.append(
                {
                    "utterance_ID": int(i),
                    "text": text,
                    "speaker": speaker,
                    "emotion": emotion,
                    "video_name": f"dia{d}utt{i}.mp4",
                }
            )
        pairs = [p.split(",") for t in sorted(by_target) for p in by_target[t]["response"].split(";") if p]
        out.append({"conversation_ID": int(d), "conversation": conversation, "emotion-cause_pairs": pairs})
    return out


def conversation_json(tmp_path, pairs, emotions=("neutral", "surprise", "joy")):
    items = [
        {
            "conversation_ID": 1,
            "emotion-cause_pairs": pairs,
            "conversation": [
                {
                    "utterance_ID": i,
                    "text": f"text {i}",
                    "speaker": "Ross",
                    "emotion": e,
                    "video_name": f"dia1utt{i}.mp4",
                }
                for i, e in enumerate(emotions, start=1)
            ],
        }
    ]
    path = tmp_path / "ecf.json"
    path.write_text(json.dumps(items))
    return path


def test_rebuilds_every_released_ecpe_record(emoverse_dir, tmp_path, capsys):
    released = json.loads((emoverse_dir / "ecf2_caption_test.json").read_text(encoding="utf-8"))
    (tmp_path / "semeval.json").write_text(json.dumps(reconstruct(released), ensure_ascii=False))
    code, out, _ = build(
        capsys, "ecf", tmp_path / "semeval.json", "--out", tmp_path / "o.json", "--media-prefix", PREFIX
    )
    assert code == 0, out
    records = built(tmp_path / "o.json", "ecpe")
    key = lambda r: r["videos"][0]  # noqa: E731
    assert sorted(records, key=key) == sorted(released, key=key)
    assert len(records) == 1821 and sum(not r["response"] for r in records) == 75


def test_one_record_per_emotional_utterance_with_earlier_candidates(tmp_path, capsys):
    path = conversation_json(tmp_path, [["3_joy", "2"], ["2_surprise", "2"], ["3_joy", "1"]])
    assert build(capsys, "ecf", path, "--out", tmp_path / "o.json")[0] == 0
    records = built(tmp_path / "o.json", "ecpe")
    assert [r["response"] for r in records] == ["2_surprise,2", "3_joy,2;3_joy,1"]  # the JSON's order
    assert [r["videos"] for r in records] == [["dia1utt2.mp4"], ["dia1utt3.mp4"]]
    candidates = records[1]["query"].split("Candidate utterances:")[1].split("\nTarget utterance:")[0]
    assert candidates == "1_neutral. Ross: text 1\n2_surprise. Ross: text 2"
    first = records[0]["query"].split("Candidate utterances:")[1].split("\nTarget")[0]
    assert first == "1_neutral. Ross: text 1"


def test_end_to_end_hides_emotions_and_targets_every_utterance(tmp_path, capsys):
    path = conversation_json(tmp_path, [["3_joy", "2"]])
    assert build(capsys, "ecf", path, "--out", tmp_path / "o.json", "--end-to-end")[0] == 0
    records = built(tmp_path / "o.json", "ecpe")
    assert [r["response"] for r in records] == ["", "", "3_joy,2"]
    assert "_joy" not in records[2]["query"] and "Target utterance:3. Ross: text 3\n" in records[2]["query"]
    assert infer_task(e2e_query([Utterance("A", "hi", "joy")], 1)) == "ecpe"
    assert "Candidate utterances:\nTarget utterance:1. A: hi" in e2e_query([Utterance("A", "hi", "joy")], 1)


def test_bad_conversations_are_counted(tmp_path, capsys):
    path = conversation_json(tmp_path, [["3_joy", "9"]])
    code, out, _ = build(capsys, "ecf", path, "--out", tmp_path / "o.json")
    # Nothing left to write: an error (an empty file would only fail in training), the skips still shown.
    assert code == 2 and "broken conversation: 1" in out and "ecf.json:0: conversation 1:" in out
    assert not (tmp_path / "o.json").exists()
    path = conversation_json(tmp_path, [], emotions=("neutral", "happy"))
    code, out, _ = build(capsys, "ecf", path, "--out", tmp_path / "s.json", "--strict")
    assert code == 2 and "unknown emotion 'happy'" in out and not (tmp_path / "s.json").exists()


def test_conversations_with_unusable_values_are_counted_skips(tmp_path, capsys):
    good = json.loads(conversation_json(tmp_path, [["3_joy", "2"]]).read_text())[0]
    bad = [
        good | {"emotion-cause_pairs": 7},
        good | {"conversation": [good["conversation"][0] | {"text": ["a list"]}]},
        good | {"conversation": [good["conversation"][1] | {"text": "Wow \ud800"}]},
        good | {"conversation_ID": float("nan")},
        good,
    ]
    (tmp_path / "ecf.json").write_text(json.dumps([good, *bad]))  # NaN is written as NaN
    code, out, _ = build(capsys, "ecf", tmp_path / "ecf.json", "--out", tmp_path / "o.json")
    assert code == 0 and "ecf.json:1: conversation 1: emotion-cause_pairs must be a list, got int" in out
    assert "ecf.json:2: conversation 1: utterance 1: text must be text" in out
    assert "ecf.json:3: unusable value: conversation[0].text has an unpaired UTF-16 surrogate" in out
    assert "ecf.json:4: unusable value: conversation_ID is nan (not a finite number)" in out
    assert "ecf.json:5: same query, response and media as an earlier record" in out  # good, twice
    assert "broken conversation: 2, bad value: 2, duplicate: 2" in out
    assert len(built(tmp_path / "o.json", "ecpe")) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, "nested too deeply to parse"),
        ("[" + "1" * 5000 + "]", "Exceeds the limit (4300 digits)"),
    ],
)
def test_json_the_parser_cannot_take_is_one_line(tmp_path, capsys, text, message):
    (tmp_path / "ecf.json").write_text(text)
    code, _, err = build(capsys, "ecf", tmp_path / "ecf.json", "--out", tmp_path / "o.json")
    assert code == 2 and f"ecf.json: invalid JSON ({message}" in one_error_line(err)

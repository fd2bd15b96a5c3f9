"""The dialogue readers (conversations.py) on inputs they must skip or refuse in one line."""

import pytest
from test_build_cli import MELD_HEADER, build, one_error_line
from test_dialogue import emorynlp_json, jsonl, turn


def test_meld_ids_that_are_not_ascii_digits_are_counted_skips(tmp_path, capsys):
    rows = ["0,hi,Ross,joy,x,²,0,1,1,a,b", "1,yo,Ross,joy,x,0,١,1,1,a,b", "2,ok,Joey,joy,x,0,0,1,1,a,b"]
    (tmp_path / "m.csv").write_text(MELD_HEADER + "\n".join(rows) + "\n")
    code, out, _ = build(
        capsys, "dialogue", tmp_path / "m.csv", "--format", "meld", "--out", tmp_path / "o.json"
    )
    assert code == 0 and "1 record(s)" in out and "broken row: 2" in out
    assert "m.csv:2: bad Dialogue_ID/Utterance_ID '²'/'0'" in out


def test_emorynlp_values_of_the_wrong_type_are_counted_skips(tmp_path, capsys):
    source = emorynlp_json(
        tmp_path / "trn.json",
        {
            "c1": [
                ({"Ross": 1}, "Hi.", "Joyful"),
                (5, "Hi.", "Joyful"),
                (["Ross"], "Hi.", ["Joyful"]),
                (["Ross"], "Hi \ud800", "Joyful"),
                (["Ross"], "Hello.", "Joyful"),
            ]
        },
    )
    code, out, _ = build(capsys, "dialogue", source, "--format", "emorynlp", "--out", tmp_path / "o.json")
    assert code == 0 and "1 record(s)" in out and "broken row: 3, bad value: 1" in out
    assert "trn.json:episodes[0].scenes[0].utterances[0]: speakers must be a list of names" in out
    assert "utterances[3]: unusable value: transcript has an unpaired UTF-16 surrogate" in out


def test_jsonl_lines_with_unusable_values_are_counted_skips(tmp_path, capsys):
    lines = [
        turn("d", 0, "A", "Hi.", "calm"),
        "[" * 100_000,
        '{"dialogue_id": "d", "turn": ' + "1" * 5000 + "}",
        turn("d", 2, "A", "Bye \ud800", "calm"),
        turn("d", 3, ["A"], "Hm.", "calm"),
        turn("d", 4, "A", "Hm.", float("nan")),
    ]
    source = jsonl(tmp_path / "d.jsonl", lines)
    code, out, _ = build(
        capsys, "dialogue", source, "--format", "jsonl", "--dataset", "x", "--out", tmp_path / "o.json"
    )
    assert code == 0 and "1 record(s)" in out and "broken row: 3, bad value: 2" in out
    assert "d.jsonl:2: bad JSON line (nested too deeply to parse" in out
    assert "d.jsonl:3: bad JSON line (Exceeds the limit (4300 digits)" in out
    assert "d.jsonl:4: unusable value: text has an unpaired UTF-16 surrogate" in out
    assert "d.jsonl:5: speaker and emotion must be strings" in out
    assert "d.jsonl:6: unusable value: emotion is nan (not a finite number)" in out


@pytest.mark.parametrize("text", ["[" * 100_000, '{"episodes": ' + "[" * 50_000])
def test_emorynlp_nested_past_the_parser_is_one_line(tmp_path, capsys, text):
    (tmp_path / "trn.json").write_text(text)
    code, _, err = build(
        capsys, "dialogue", tmp_path / "trn.json", "--format", "emorynlp", "--out", tmp_path / "o.json"
    )
    assert code == 2 and "trn.json: invalid JSON (nested too deeply to parse" in one_error_line(err)
    assert not (tmp_path / "o.json").exists()


def test_a_dialogue_given_twice_is_built_once(tmp_path, capsys):
    source = jsonl(
        tmp_path / "d.jsonl", [turn("d", 0, "A", "Hi.", "calm"), turn("d", 1, "B", "Yo.", "tense")]
    )
    argv = ("--format", "jsonl", "--dataset", "x", "--out", tmp_path / "o.json")
    code, out, _ = build(capsys, "dialogue", source, source, *argv)
    assert code == 0 and "2 record(s)" in out and "duplicate: 2" in out
    assert "d.jsonl:1: same query, response and media as an earlier record" in out

import json

from test_build_cli import build, built, one_error_line


def test_eri_from_csv_and_json(tmp_path, capsys):
    (tmp_path / "r.csv").write_text('clip,reason,text\nv1_0,"He smiles,  so he is happy.",I won\nv1_1,,x\n')
    argv = ("eri", tmp_path / "r.csv", "--out", tmp_path / "o.json", "--utterance-column", "text")
    code, out, _ = build(capsys, *argv)
    assert code == 0 and "r.csv:3: empty clip name or reason" in out
    [record] = built(tmp_path / "o.json", "eri")
    assert record == {
        "query": "The person says: 'I won' <reason> What is the emotional state of the person in "
        "the video? Please tell me the reason.",
        "response": "He smiles, so he is happy.",
        "videos": ["v1_0.mp4"],
    }
    (tmp_path / "r.json").write_text(json.dumps([{"id": "a.mp4", "why": "Calm."}, {"id": "b"}]))
    argv = (
        "eri",
        tmp_path / "r.json",
        "--out",
        tmp_path / "j.json",
        "--clip-column",
        "id",
        "--reason-column",
        "why",
    )
    code, out, _ = build(capsys, *argv)
    assert code == 0 and "r.json:1: missing why" in out
    assert built(tmp_path / "j.json", "eri")[0]["videos"] == ["a.mp4"]


def test_missing_reason_column_is_fatal(tmp_path, capsys):
    (tmp_path / "r.tsv").write_text("clip\tcause\nv1\tx\n")
    code, _, err = build(capsys, "eri", tmp_path / "r.tsv", "--out", tmp_path / "o.json")
    assert code == 2 and "r.tsv: missing column(s) reason" in err


def test_json_items_with_unusable_values_are_counted_skips(tmp_path, capsys):
    items = [
        {"clip": ["a"], "reason": "x"},
        {"clip": "b", "reason": "Sad \ud800"},
        {"clip": "c", "reason": 1e999},
    ]
    items += [{"clip": 7, "reason": "Calm."}, {"clip": "d", "reason": {"nested": 1}}]
    (tmp_path / "r.json").write_text(json.dumps(items))  # 1e999 is written as Infinity
    code, out, _ = build(capsys, "eri", tmp_path / "r.json", "--out", tmp_path / "o.json")
    assert code == 0 and "r.json:0: clip must be text, not a list or an object" in out
    assert "r.json:1: unusable value: reason has an unpaired UTF-16 surrogate" in out
    assert (
        "r.json:2: unusable value: reason is inf (not a finite number)" in out and "r.json:4: reason" in out
    )
    assert [r["videos"] for r in built(tmp_path / "o.json", "eri")] == [["7.mp4"]]


def test_json_nested_past_the_parser_is_one_line(tmp_path, capsys):
    (tmp_path / "r.json").write_text("[" * 100_000)
    code, _, err = build(capsys, "eri", tmp_path / "r.json", "--out", tmp_path / "o.json")
    assert code == 2 and "r.json: invalid JSON (nested too deeply to parse" in one_error_line(err)

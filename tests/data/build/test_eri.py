import json

from test_build_cli import build, built


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

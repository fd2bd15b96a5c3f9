import pytest
from test_build_cli import build, built

import m2se.sources.cli as build_cli
from m2se.tasks import TASKS

LABELS = (
    "name,discrete,valence\ns1,Happy,1.5\ns2,bored,0\ns3,sad,\ns4,angry,-2\ns1,happy,1\ns5,worried,high\n"
)
TRANSCRIPTS = "name,chinese,english\ns1,我赢了,I won\ns3,,\ns5,嗯,Hmm\n"


@pytest.fixture
def tables(tmp_path):
    (tmp_path / "label.csv").write_text(LABELS, encoding="utf-8")
    (tmp_path / "transcription.csv").write_text(TRANSCRIPTS, encoding="utf-8")
    return tmp_path / "label.csv", tmp_path / "transcription.csv"


def test_records_quote_the_subtitle_and_answer_the_bare_label(tables, tmp_path, capsys):
    code, out, _ = build(capsys, "mer2023", *tables, "--out", tmp_path / "o.json", "--media-prefix", "V/")
    assert code == 0 and "2 record(s)" in out
    assert "label.csv:3: unknown MER2023 label 'bored'" in out
    assert "label.csv:5: clip s4 has no row in transcription.csv" in out
    assert "label.csv:6: empty or repeated clip name 's1'" in out
    assert "label.csv:7: valence 'high' is not a finite number" in out
    first, second = built(tmp_path / "o.json", "mer2023")
    assert first == {
        "query": TASKS["mer2023"].query("I won"),
        "response": "happy",
        "videos": ["V/s1.mp4"],
        "valence": 1.5,
    }
    assert first["query"].startswith("The person in video says: I won.  [emotion] Please determine")
    assert second["response"] == "sad" and "valence" not in second  # empty subtitle and valence kept empty
    assert second["query"].startswith("The person in video says: .  [emotion]")


def test_chinese_frames_audio_and_features(tables, tmp_path, capsys):
    argv = ("--language", "chinese", "--media", "frame", "--audio-prefix", "A/")
    argv += ("--features", "audio=HL-UTT/", "--features", "face=mae/")
    code, _, _ = build(capsys, "mer2023", *tables, "--out", tmp_path / "o.json", *argv)
    record = built(tmp_path / "o.json", "mer2023")[0]
    assert code == 0 and record["query"] == TASKS["mer2023"].query("我赢了")
    assert record["images"] == ["s1.jpg"] and "videos" not in record and record["audio"] == "A/s1.wav"
    assert record["features"] == {"audio": "HL-UTT/s1.npy", "face": "mae/s1.npy"}


def test_strict_and_media_root(tables, tmp_path, capsys):
    code, _, err = build(capsys, "mer2023", *tables, "--out", tmp_path / "s.json", "--strict")
    assert code == 2 and "--strict" in err and not (tmp_path / "s.json").exists()
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "s3.mp4").write_bytes(b"")
    argv = ("--out", tmp_path / "o.json", "--media-root", tmp_path / "clips")
    code, out, _ = build(capsys, "mer2023", *tables, *argv)
    assert code == 0 and "label.csv:2: missing media" in out
    assert [r["videos"] for r in built(tmp_path / "o.json", "mer2023")] == [["s3.mp4"]]


@pytest.mark.parametrize(
    ("labels", "transcripts", "argv", "message"),
    [
        ("name,label\ns1,happy\n", TRANSCRIPTS, (), "label.csv: missing column(s) discrete"),
        (
            LABELS,
            "name,english\ns1,hi\n",
            ("--language", "chinese"),
            "transcription.csv: missing column(s) chinese",
        ),
        (LABELS, TRANSCRIPTS, ("--features", "a=x/", "--features", "a=y/"), "view 'a' is given twice"),
    ],
)
def test_fatal_inputs_are_one_line_errors(tmp_path, capsys, labels, transcripts, argv, message):
    (tmp_path / "label.csv").write_text(labels)
    (tmp_path / "transcription.csv").write_text(transcripts)
    inputs = (tmp_path / "label.csv", tmp_path / "transcription.csv")
    code, _, err = build(capsys, "mer2023", *inputs, "--out", tmp_path / "o.json", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.json").exists()


def test_needs_exactly_two_inputs(tables, tmp_path, capsys):
    code, _, err = build(capsys, "mer2023", tables[0], "--out", tmp_path / "o.json")
    assert code == 2 and "expected LABEL_CSV TRANSCRIPT_CSV, got 1 input(s)" in err


def test_bad_feature_option_is_a_usage_error(tables, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_cli.main(
            ["mer2023", *map(str, tables), "--out", str(tmp_path / "o.json"), "--features", "HL-UTT/"]
        )
    assert exit_info.value.code == 2 and "expected VIEW=PREFIX" in capsys.readouterr().err


def test_help_describes_the_source(capsys):
    with pytest.raises(SystemExit):
        build_cli.main(["mer2023", "--help"])
    out = capsys.readouterr().out
    assert "--language" in out and "--features" in out and "--media-prefix" in out


def test_a_valence_that_is_no_finite_number_is_a_counted_skip(tmp_path, capsys):
    (tmp_path / "label.csv").write_text("name,discrete,valence\ns1,happy,nan\ns3,sad,-inf\ns5,worried,0.5\n")
    (tmp_path / "t.csv").write_text(TRANSCRIPTS, encoding="utf-8")
    code, out, _ = build(
        capsys, "mer2023", tmp_path / "label.csv", tmp_path / "t.csv", "--out", tmp_path / "o.json"
    )
    assert code == 0 and "label.csv:2: valence 'nan' is not a finite number" in out and "broken row: 2" in out
    assert [r["valence"] for r in built(tmp_path / "o.json", "mer2023")] == [0.5]

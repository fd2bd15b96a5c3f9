import json

import pytest
from test_build_cli import build, built, one_error_line

import m2se.sources.cli as build_cli
from m2se.tasks import TASKS

MERR = {
    "sample_1": {
        "pseu_emotion": "happy",
        "caption": "Coarse one.",
        "smp_reason_caption": "He  smiles,\nso happy.",
    },
    "sample_2": {"caption": "Coarse two.", "text": "Hello there"},
    "sample_3": {"smp_reason_caption": "  "},
    "sample_4": "not an object",
}


@pytest.fixture
def merr(tmp_path):
    path = tmp_path / "MERR_fine_grained.json"
    path.write_text(json.dumps(MERR), encoding="utf-8")
    return path


def test_fine_captions_are_the_default(merr, tmp_path, capsys):
    code, out, _ = build(capsys, "merr", merr, "--out", tmp_path / "o.json", "--media-prefix", "V/")
    assert code == 0 and "1 record(s)" in out and "no caption: 2" in out
    assert "MERR_fine_grained.json:sample_3: no 'smp_reason_caption' caption" in out
    assert "MERR_fine_grained.json:sample_4: expected an object, got str" in out
    assert built(tmp_path / "o.json", "eri") == [
        {"query": TASKS["eri"].query(""), "response": "He smiles, so happy.", "videos": ["V/sample_1.mp4"]}
    ]


def test_coarse_captions_quote_the_items_text_or_a_transcript(merr, tmp_path, capsys):
    code, _, _ = build(capsys, "merr", merr, "--out", tmp_path / "o.json", "--caption", "coarse")
    records = built(tmp_path / "o.json", "eri")
    assert code == 0 and [r["response"] for r in records] == ["Coarse one.", "Coarse two."]
    assert records[1]["query"] == TASKS["eri"].query("Hello there")
    (tmp_path / "t.csv").write_text("name,chinese,english\nsample_1.mp4,你好,Hi  you\n", encoding="utf-8")
    argv = ("--caption", "coarse", "--transcript", tmp_path / "t.csv", "--transcript-column", "english")
    code, out, _ = build(capsys, "merr", merr, "--out", tmp_path / "t.json", *argv, "--media", "frame")
    assert code == 0 and "MERR_fine_grained.json:sample_2: clip sample_2 has no row in t.csv" in out
    [record] = built(tmp_path / "t.json", "eri")
    assert record["query"] == TASKS["eri"].query("Hi you") and record["images"] == ["sample_1.jpg"]


def test_clips_annotated_twice_are_skipped(merr, tmp_path, capsys):
    code, out, _ = build(capsys, "merr", merr, merr, "--out", tmp_path / "o.json")
    assert code == 0 and "clip sample_1 is annotated twice" in out
    assert len(built(tmp_path / "o.json", "eri")) == 1


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("test_label.csv", "name,discrete,valence\nsample_9,sad,0\nsample_1,happy,1\n"),
        ("test3_NCEV.txt", "sample_9 30 sad -1\n\nsample_1.mp4 20 happy 1.2\n"),
    ],
)
def test_clips_in_the_test_list_refuse_the_build(merr, tmp_path, capsys, name, text):
    (tmp_path / name).write_text(text)
    argv = ("merr", merr, "--out", tmp_path / "o.json", "--test-list", tmp_path / name)
    code, _, err = build(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "o.json").exists()
    assert f"MERR_fine_grained.json: 1 clip(s) also in the test list {name} (sample_1)" in err
    assert "--allow-overlap" in err
    code, out, err = build(capsys, *argv, "--allow-overlap")
    assert code == 0 and f"warning: 1 clip(s) also in the test list {name} (sample_1) kept" in err
    assert [r["videos"] for r in built(tmp_path / "o.json", "eri")] == [["sample_1.mp4"]]


def test_refusal_names_the_count_and_the_first_clips(tmp_path, capsys):
    items = {f"s{i}": {"smp_reason_caption": f"Reason {i}."} for i in range(8)}
    (tmp_path / "m.json").write_text(json.dumps(items))
    (tmp_path / "test.txt").write_text("\n".join(items) + "\n")
    code, _, err = build(
        capsys,
        "merr",
        tmp_path / "m.json",
        "--out",
        tmp_path / "o.json",
        "--test-list",
        tmp_path / "test.txt",
    )
    assert code == 2 and "8 clip(s) also in the test list test.txt (s0, s1, s2, s3, s4, ...)" in err


def test_a_clean_test_list_builds(merr, tmp_path, capsys):
    (tmp_path / "test.txt").write_text("sample_9\n")
    code, out, err = build(
        capsys, "merr", merr, "--out", tmp_path / "o.json", "--test-list", tmp_path / "test.txt"
    )
    assert code == 0 and "1 record(s)" in out and not err


@pytest.mark.parametrize(
    ("file", "text", "argv", "message"),
    [
        ("m.json", "[1, 2]", (), "m.json: expected a JSON object keyed by clip name"),
        ("m.json", "{oops", (), "m.json: invalid JSON"),
        ("empty.txt", "\n", ("--test-list",), "empty.txt: no clip names in the test list"),
        ("test.csv", "clip\nsample_1\n", ("--test-list",), "test.csv: missing column(s) name"),
        (
            "t.csv",
            "name,sentence\n",
            ("--transcript-column", "english", "--transcript"),
            "t.csv: missing column(s) english",
        ),
    ],
)
def test_fatal_inputs_are_one_line_errors(merr, tmp_path, capsys, file, text, argv, message):
    (tmp_path / file).write_text(text)
    source = tmp_path / file if file == "m.json" else merr
    extra = (*argv, tmp_path / file) if argv else ()
    code, _, err = build(capsys, "merr", source, "--out", tmp_path / "o.json", *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.json").exists()


def test_missing_test_list_is_a_one_line_error(merr, tmp_path, capsys):
    code, _, err = build(
        capsys, "merr", merr, "--out", tmp_path / "o.json", "--test-list", tmp_path / "no.txt"
    )
    assert code == 2 and "no.txt: no such file (see docs/DATA.md)" in err


def test_help_describes_the_source(capsys):
    with pytest.raises(SystemExit):
        build_cli.main(["merr", "--help"])
    out = capsys.readouterr().out
    assert "--test-list" in out and "--allow-overlap" in out and "--caption" in out


def test_clips_with_unusable_values_are_counted_skips(tmp_path, capsys):
    items = {"s\ud800": {"smp_reason_caption": "Calm."}, "s2": {"smp_reason_caption": "Sad \udfff"}}
    items |= {
        "s3": {"smp_reason_caption": "Fine.", "score": float("inf")},
        "s4": {"smp_reason_caption": "Ok."},
    }
    (tmp_path / "m.json").write_text(json.dumps(items))
    code, out, _ = build(capsys, "merr", tmp_path / "m.json", "--out", tmp_path / "o.json")
    assert code == 0 and "bad value: 3" in out and "m.json:s\\ud800: unusable value: a key of clips" in out
    assert "m.json:s3: unusable value: s3.score is inf (not a finite number)" in out
    assert [r["videos"] for r in built(tmp_path / "o.json", "eri")] == [["s4.mp4"]]


def test_json_nested_past_the_parser_is_one_line(tmp_path, capsys):
    (tmp_path / "m.json").write_text('{"a": ' * 50_000)
    code, _, err = build(capsys, "merr", tmp_path / "m.json", "--out", tmp_path / "o.json")
    assert code == 2 and "m.json: invalid JSON (nested too deeply to parse" in one_error_line(err)

"""The build CLI and what every builder shares (common.py); other builder tests import ``build``/``built``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2se.data.build.__main__ import build_parser, main
from m2se.data.build.common import BuildResult, decode, summary
from m2se.data.inspect import main as inspect_main
from m2se.data.records import load_records

MELD_HEADER = (
    "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
)


def build(capsys, *argv: str | Path) -> tuple[int, str, str]:
    """Run ``python -m m2se.data.build`` in process; (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def built(out: Path, task: str) -> list[dict]:
    """The written records, after checking they load as ``task`` EMT records and pass inspect."""
    loaded = load_records(out, require_media=False)
    assert not loaded.skipped and {r.task for r in loaded.records} == {task}
    assert inspect_main([str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_decode_keeps_utf8_and_reads_stray_cp1252_bytes():
    assert decode("café “x” ".encode() + b"you\x92re \x85") == "café “x” you’re …"


def test_every_source_has_a_subcommand():
    sub = next(a for a in build_parser()._actions if a.dest == "source")
    assert {"meld", "ecf", "mosei", "fer", "eri"} <= set(sub.choices)


def test_summary_counts_tasks_and_reasons():
    result = BuildResult()
    result.add(
        "x.csv:2",
        "The person says: 'a' <emotion> anger, sadness, surprise, disgust, joy, neutral or fear.",
        "Joy.",
        "videos",
        "a.mp4",
    )
    result.skip("x.csv:3", "unknown MELD emotion 'joyful'", "unknown label")
    text = summary(result, Path("out.json"))
    assert (
        "1 record(s) to out.json" in text and "unknown label: 1" in text and "x.csv:3: unknown MELD" in text
    )


def test_missing_file_and_missing_columns_are_one_line_errors(tmp_path, capsys):
    code, _, err = build(capsys, "meld", tmp_path / "nope.csv", "--out", tmp_path / "o.json")
    assert (
        code == 2 and err.startswith("error: ") and "nope.csv" in err and len(err.strip().splitlines()) == 1
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("Utterance,Speaker\nhi,Joey\n")
    code, _, err = build(capsys, "meld", bad, "--out", tmp_path / "o.json")
    assert code == 2 and "bad.csv: missing column(s) Emotion, Dialogue_ID, Utterance_ID" in err
    assert not (tmp_path / "o.json").exists()


def test_skips_are_counted_and_strict_writes_nothing(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text(
        MELD_HEADER + "1,hi,Joey,joy,positive,0,0,1,1,a,b\n2,yo,Joey,joyful,positive,0,1,1,1,a,b\n3,cut\n"
    )
    code, out, _ = build(capsys, "meld", csv, "--out", tmp_path / "o.json")
    assert code == 0 and "1 record(s)" in out and "m.csv:3: unknown MELD emotion 'joyful'" in out
    assert "m.csv:4: broken row" in out
    assert [r["response"] for r in built(tmp_path / "o.json", "erc")] == ["Joy."]
    code, _, err = build(capsys, "meld", csv, "--out", tmp_path / "s.json", "--strict")
    assert code == 2 and "--strict" in err and not (tmp_path / "s.json").exists()


def test_media_root_skips_rows_whose_clip_is_missing(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text(MELD_HEADER + "1,hi,Joey,joy,positive,0,0,1,1,a,b\n2,yo,Joey,anger,negative,0,1,1,1,a,b\n")
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "dia0_utt1.mp4").write_bytes(b"")
    argv = (
        "meld",
        csv,
        "--out",
        tmp_path / "o.json",
        "--media-root",
        tmp_path / "clips",
        "--media-prefix",
        "v/",
    )
    code, out, _ = build(capsys, *argv)
    assert code == 0 and "missing media: 1" in out and "m.csv:2: missing media" in out
    assert built(tmp_path / "o.json", "erc")[0]["videos"] == ["v/dia0_utt1.mp4"]


@pytest.mark.parametrize("source", ["meld", "ecf"])
def test_help_describes_the_source(source, capsys):
    with pytest.raises(SystemExit):
        main([source, "--help"])
    assert "--media-prefix" in capsys.readouterr().out

"""The build CLI and what every builder shares (common.py); other builder tests import ``build``/``built``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2se.data.inspect import main as inspect_main
from m2se.data.records import load_records
from m2se.sources.cli import build_parser, main
from m2se.sources.common import BuildResult, decode, summary

MELD_HEADER = (
    "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
)


def build(capsys, *argv: str | Path) -> tuple[int, str, str]:
    """Run ``python -m m2se.sources`` in process; (exit status, stdout, stderr)."""
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
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.strip() == f"error: {tmp_path / 'nope.csv'}: no such file (see docs/DATA.md)"
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


def one_error_line(err: str) -> str:
    """stderr's only line, after checking it is one ``error: `` line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# Per CSV/TSV reader: argv ({table} is the file under test; the other inputs are well formed) and its header.
OPENFACE = "frame,success,AU12_r,AU12_c\n1,1,3,1\n"
READERS = {
    "meld": (["meld", "{table}"], MELD_HEADER),
    "mosei": (["mosei", "{table}"], "video_id,clip_id,text,label,mode"),
    "mosei --emotions": (
        ["mosei", "label.csv", "--emotions", "{table}"],
        "video_id,clip_id,happy,sad,anger,surprise,disgust,fear",
    ),
    "fer": (["fer", "{table}"], "frame,success,AU12_r,AU12_c"),
    "fer --transcripts": (["fer", "v1.csv", "--transcripts", "{table}"], "clip,text"),
    "eri": (["eri", "{table}"], "clip\treason"),
    "dialogue": (["dialogue", "{table}", "--format", "meld"], MELD_HEADER),
    "mer2023 labels": (["mer2023", "{table}", "tr.csv"], "name,discrete"),
    "mer2023 transcripts": (["mer2023", "label.csv", "{table}"], "name,english"),
    "merr --transcript": (["merr", "m.json", "--transcript", "{table}"], "name,sentence"),
    "merr --test-list": (["merr", "m.json", "--test-list", "{table}"], "name"),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_a_field_over_the_csv_size_limit_is_one_line_naming_the_line(reader, tmp_path, capsys):
    argv, header = READERS[reader]
    (tmp_path / "label.csv").write_text(
        "video_id,clip_id,text,label,mode,name,discrete\nv,0,hi,1,test,s1,sad\n"
    )
    (tmp_path / "tr.csv").write_text("name,english\ns1,hi\n")
    (tmp_path / "v1.csv").write_text(OPENFACE)
    (tmp_path / "m.json").write_text('{"s1": {"smp_reason_caption": "Calm."}}')
    table = tmp_path / ("t.tsv" if "\t" in header else "t.csv")
    table.write_text(header.strip() + "\n" + "x" * 140_000 + "\n")  # csv's limit: 131,072 characters a field
    argv = [str(table) if a == "{table}" else str(tmp_path / a) if "." in a else a for a in argv]
    code, _, err = build(capsys, *argv, "--out", tmp_path / "o.json")
    assert code == 2 and not (tmp_path / "o.json").exists()
    assert (
        one_error_line(err)
        == f"error: {table}:2: not a readable table (field larger than field limit (131072))"
    )


def test_an_error_naming_values_with_line_breaks_stays_one_line(tmp_path, capsys):
    (tmp_path / "m.csv").write_text('"Utter\nance",Emotion\nhi,joy\n')
    code, _, err = build(capsys, "meld", tmp_path / "m.csv", "--out", tmp_path / "o.json")
    assert (
        code == 2
        and "missing column(s) Utterance, Dialogue_ID, Utterance_ID (found: Utter ance, Emotion)" in err
    )
    one_error_line(err)


def meld_csv(path: Path, *rows: str) -> Path:
    path.write_text(MELD_HEADER + "".join(f"{i},{row},1,1,a,b\n" for i, row in enumerate(rows)))
    return path


@pytest.mark.parametrize("where", ["file/o.json", "folder", "/proc/m2se.json"])
def test_an_unwritable_out_is_one_line_naming_it(where, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    out = Path(where) if where.startswith("/") else tmp_path / where
    code, _, err = build(capsys, "meld", meld_csv(tmp_path / "m.csv", "hi,Joey,joy,x,0,0"), "--out", out)
    named = tmp_path / "file" if where.startswith("file") else out
    assert code == 2 and one_error_line(err).startswith(f"error: {named}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder", "m.csv"]  # no temporary left


def test_the_output_is_replaced_whole(tmp_path, capsys):
    out = tmp_path / "o.json"
    out.write_text("[]\n")
    assert build(capsys, "meld", meld_csv(tmp_path / "m.csv", "hi,Joey,joy,x,0,0"), "--out", out)[0] == 0
    assert [r["response"] for r in json.loads(out.read_text())] == ["Joy."]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "o.json"]


def test_records_training_would_drop_as_duplicates_are_counted_skips(tmp_path, capsys):
    csv = meld_csv(tmp_path / "m.csv", "hi,Joey,joy,x,0,0", "hi,Ross,joy,x,0,0", "hi,Joey,joy,x,0,1")
    code, out, _ = build(capsys, "meld", csv, "--out", tmp_path / "o.json")
    assert code == 0 and "2 record(s)" in out and "duplicate: 1" in out
    assert "m.csv:3: same query, response and media as an earlier record" in out
    assert len(built(tmp_path / "o.json", "erc")) == 2
    code, _, err = build(capsys, "meld", csv, "--out", tmp_path / "s.json", "--strict")
    assert code == 2 and "1 row(s) skipped" in one_error_line(err)


def test_media_names_leaving_the_media_folder_are_counted_skips(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("clip,reason\n../x,Calm.\n/etc/y,Calm.\nsub/z,Calm.\n")
    code, out, _ = build(
        capsys, "eri", tmp_path / "r.csv", "--out", tmp_path / "o.json", "--media-prefix", "V/"
    )
    assert code == 0 and "bad media name: 2" in out and "r.csv:2: media name '../x.mp4' leaves" in out
    assert [r["videos"] for r in built(tmp_path / "o.json", "eri")] == [["V/sub/z.mp4"]]


def test_common_number_readers():
    from m2se.sources.common import finite, whole_number

    assert [whole_number(t) for t in ("0", " 12 ", "²", "١", "-1", "1.0", "9" * 5000)] == [0, 12, *[None] * 5]
    assert finite(" -1.5 ") == -1.5
    for text in ("nan", "inf", "-Infinity", "1e400", "x"):
        with pytest.raises(ValueError):
            finite(text)

import pytest
from test_build_cli import build, built

from m2se.sources.au_phrases import AU_PHRASES
from m2se.sources.cli import main

HEADER = "frame, face_id, timestamp, confidence, success, AU04_r, AU12_r, AU26_r, AU45_r, AU04_c, AU12_c, AU26_c, AU45_c\n"


def test_peak_frame_and_phrases_by_intensity(tmp_path, capsys):
    clips = tmp_path / "openface"
    clips.mkdir()
    (clips / "v1_0.csv").write_text(
        HEADER
        + "1, 0, 0.0, 0.9, 1, 0.5, 0.2, 0.0, 0.0, 1, 0, 0, 0\n"
        + "2, 0, 0.1, 0.9, 1, 1.5, 3.0, 0.5, 4.0, 1, 1, 1, 1\n"  # peak: AU26 below threshold, AU45 not named
        + "3, 0, 0.2, 0.1, 0, 5.0, 5.0, 5.0, 5.0, 1, 1, 1, 1\n"  # not tracked
    )
    (clips / "v1_1.csv").write_text(HEADER + "1, 0, 0.0, 0.9, 0, 1, 1, 1, 1, 1, 1, 1, 1\n")
    (tmp_path / "t.csv").write_text("clip,text\nv1_0,Great news\n")
    argv = (
        "fer",
        clips,
        "--out",
        tmp_path / "o.json",
        "--transcripts",
        tmp_path / "t.csv",
        "--media-prefix",
        "F/",
    )
    code, out, _ = build(capsys, *argv)
    assert code == 0 and "no face: 1" in out
    [record] = built(tmp_path / "o.json", "fer")
    assert record["response"] == "Smiling; Brows furrowed" and record["images"] == ["F/v1_0_000002.png"]
    assert record["query"].startswith("The person says: 'Great news' <expression> Detail the facial")


def test_table_names_the_documented_units():
    assert (
        AU_PHRASES["AU04"] == "Brows furrowed"
        and AU_PHRASES["AU26"] == "Jaw dropping"
        and "AU45" not in AU_PHRASES
    )


def test_non_finite_frames_and_intensities_are_counted_skips(tmp_path, capsys):
    header = "frame,success,AU12_r,AU12_c\n"
    (tmp_path / "a.csv").write_text(
        header + "inf,1,3,1\n1e400,1,3,1\nnan,1,3,1\n2,nan,3,1\n3,1,inf,1\n4,1,2,1\n"
    )
    (tmp_path / "b.csv").write_text(header + "1,1,2,nan\n")
    code, out, _ = build(capsys, "fer", tmp_path / "a.csv", tmp_path / "b.csv", "--out", tmp_path / "o.json")
    assert code == 0 and "broken row: 6" in out
    assert "a.csv:2: a frame, success or AU value is not a finite number" in out
    assert "b.csv:2: an AU presence value is not a finite number" in out
    assert [r["images"] for r in built(tmp_path / "o.json", "fer")] == [["a_000004.png"]]


def test_a_threshold_that_is_no_finite_number_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fer", str(tmp_path), "--out", str(tmp_path / "o.json"), "--threshold", "nan"])
    assert exit_info.value.code == 2 and "expected a finite number, got 'nan'" in capsys.readouterr().err


def test_a_missing_openface_folder_says_where_to_get_it(tmp_path, capsys):
    code, _, err = build(capsys, "fer", tmp_path / "openface", "--out", tmp_path / "o.json")
    assert code == 2
    assert err.strip() == f"error: {tmp_path / 'openface'}: no such file or folder (see docs/DATA.md)"

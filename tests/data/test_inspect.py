import json
import subprocess
import sys

from m2se.data.inspect import main
from m2se.tasks import EMOVERSE_TASKS


def run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().out


def test_released_files_parse_with_missing_videos(emoverse_dir, capsys):
    files = [emoverse_dir / "meld_test_data.json", emoverse_dir / "ecf2_caption_test.json"]
    code, out = run(capsys, *files, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["records"] == 4431 and report["tasks"] == {"erc": 2610, "ecpe": 1821}
    assert report["errors"] == [] and report["missing_media"] == 4431
    assert report["answers"]["erc"]["Neutral"] == 1256 and report["answers"]["ecpe"]["no cause"] == 75
    assert run(capsys, *files, "--strict")[0] == 1


def test_demo_table_with_tokens_decoding_and_plot(tmp_path, demo_dir, tiny_model_dir, capsys):
    files = [
        demo_dir / "first_stage.json",
        demo_dir / "second_stage.json",
        *sorted(demo_dir.glob("test/*.json")),
    ]
    code, out = run(
        capsys, *files, "--media-root", demo_dir, "--model", tiny_model_dir, "--decode", "--strict"
    )
    assert code == 0
    assert "query+response tokens: p50" in out and "missing media: 0  corrupt media: 0" in out
    assert all(f"\n{task} " in out for task in EMOVERSE_TASKS)


def test_malformed_and_corrupt_inputs(tmp_path, demo_dir, capsys):
    records = json.loads((demo_dir / "test/msa.json").read_text())[:3]
    records[1]["response"] = "Joyful."
    del records[2]["images"]
    (tmp_path / "bad.json").write_text(json.dumps(records))
    (tmp_path / "broken.jsonl").write_text('{"query": "x"\n')
    code, out = run(
        capsys, tmp_path / "bad.json", tmp_path / "broken.jsonl", "--media-root", demo_dir, "--json"
    )
    report = json.loads(out)
    assert code == 2 and report["records"] == 1
    assert report["errors"] == [
        "bad.json:1: unknown label 'Joyful.' for task msa (expected one of 'Positive.', 'Negative.')",
        "bad.json:2: no media (expected an 'images' or 'videos' list)",
        "broken.jsonl:1: bad JSON line (Expecting ',' delimiter)",
    ]
    garbage = tmp_path / "media/x.png"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a png")
    (tmp_path / "c.json").write_text(json.dumps([{**records[0], "images": ["media/x.png"]}]))
    code, out = run(capsys, tmp_path / "c.json", "--decode", "--strict", "--json")
    assert code == 1 and json.loads(out)["corrupt_media"] == 1


def test_command_line_exit_status_and_one_line_errors(tmp_path):
    (tmp_path / "a.json").write_text("[1, 2")
    done = subprocess.run(
        [sys.executable, "-m", "m2se.data.inspect", str(tmp_path / "a.json")], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "a.json:line 1: invalid JSON" in done.stdout


def test_empty_files_and_media_outside_the_root(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main([str(empty)]) == 2
    assert capsys.readouterr().err.strip() == f"error: no records in {empty}"
    record = {"query": "The person says: 'x' <sentiment> Please determine which sentiment label in the video "
              "represents: positive or negative.", "response": "Positive.", "images": ["../outside.png"]}  # fmt: skip
    path = tmp_path / "data" / "d.json"
    path.parent.mkdir()
    path.write_text(json.dumps([record]))
    assert main([str(path)]) == 2
    assert "d.json:0: 'images' path '../outside.png' leads outside the media root" in capsys.readouterr().out
    assert main([str(path), "--allow-media-outside-root"]) == 0  # then only reported missing

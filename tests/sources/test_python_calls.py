"""Each ``build_<source>`` called from Python, without argparse, gives the records the command line writes.

The inputs are the small files of the CLI tests; options are given as typed keyword arguments.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_build_cli import MELD_HEADER, build
from test_dialogue import ROWS as DIALOGUE_ROWS
from test_dialogue import meld_csv
from test_ecf import conversation_json
from test_fer import HEADER as OPENFACE_HEADER
from test_mer2023 import LABELS, TRANSCRIPTS
from test_merr import MERR
from test_mosei import HEADER as MOSEI_HEADER
from test_mosei import ROWS as MOSEI_ROWS
from test_stages import write_config

from m2se.sources.cli import CLI_ONLY, SOURCES, build_parser
from m2se.sources.common import summary
from m2se.sources.dialogue import build_dialogue
from m2se.sources.ecf import build_ecf
from m2se.sources.eri import build_eri
from m2se.sources.fer import build_fer
from m2se.sources.meld import build_meld
from m2se.sources.mer2023 import build_mer2023
from m2se.sources.merr import build_merr
from m2se.sources.mosei import build_mosei
from m2se.sources.stages import MANIFEST, build_stages

EMOTIONS = "video_id,clip_id,happy,sad,anger,surprise,disgust,fear\nv1,0,2,0,0,0,0,0\nv1,1,0,0,0,0,0,0\n"


def inputs(tmp_path: Path) -> Path:
    """The CLI tests' inputs of every source, in one folder."""
    (tmp_path / "m.csv").write_text(
        MELD_HEADER + "1,hi,Joey,joy,positive,0,0,1,1,a,b\n2,yo,Joey,joyful,positive,0,1,1,1,a,b\n3,cut\n"
    )
    conversation_json(tmp_path, [["2_surprise", "1"], ["3_joy", "2"], ["3_joy", "3"]])
    (tmp_path / "label.csv").write_text(MOSEI_HEADER + MOSEI_ROWS)
    (tmp_path / "emo.csv").write_text(EMOTIONS)
    (tmp_path / "openface").mkdir()
    (tmp_path / "openface/v1_0.csv").write_text(
        OPENFACE_HEADER + "1, 0, 0.0, 0.9, 1, 0.5, 0.2, 0.0, 0.0, 1, 0, 0, 0\n"
        "2, 0, 0.1, 0.9, 1, 1.5, 3.0, 0.5, 4.0, 1, 1, 1, 1\n"
    )
    (tmp_path / "t.csv").write_text("clip,text\nv1_0,Great news\n")
    (tmp_path / "r.csv").write_text('clip,reason,text\nv1_0,"He smiles,  so he is happy.",I won\nv1_1,,x\n')
    meld_csv(tmp_path / "dialogues.csv", DIALOGUE_ROWS)
    (tmp_path / "mer_label.csv").write_text(LABELS, encoding="utf-8")
    (tmp_path / "transcription.csv").write_text(TRANSCRIPTS, encoding="utf-8")
    (tmp_path / "MERR_fine_grained.json").write_text(json.dumps(MERR), encoding="utf-8")
    (tmp_path / "test_list.txt").write_text("sample_2 12 happy\n")
    return tmp_path


# (command line after the source's name, with OUT for the output; the same build as a Python call)
CASES = {
    "meld": ("meld m.csv --media-prefix v/ --out OUT", lambda d: build_meld(d / "m.csv", media_prefix="v/")),
    "ecf": ("ecf ecf.json --out OUT", lambda d: build_ecf([d / "ecf.json"])),
    "ecf end to end": (
        "ecf ecf.json --end-to-end --media-prefix E/ --out OUT",
        lambda d: build_ecf([str(d / "ecf.json")], end_to_end=True, media_prefix="E/"),
    ),
    "mosei msa": (
        "mosei label.csv --split test --media video --out OUT",
        lambda d: build_mosei([d / "label.csv"], split="test", media="video"),
    ),
    "mosei mer": (
        "mosei label.csv --emotions emo.csv --media-prefix M/ --out OUT",
        lambda d: build_mosei([d / "label.csv"], emotions=d / "emo.csv", media_prefix="M/"),
    ),
    "fer": (
        "fer openface --transcripts t.csv --threshold 0.4 --out OUT",
        lambda d: build_fer([d / "openface"], transcripts=d / "t.csv", threshold=0.4),
    ),
    "eri": (
        "eri r.csv --utterance-column text --media frame --out OUT",
        lambda d: build_eri([d / "r.csv"], utterance_column="text", media="frame"),
    ),
    "dialogue": (
        "dialogue dialogues.csv --format meld --window 1 --aux speaker,predict --labels unified --out OUT",
        lambda d: build_dialogue(
            [d / "dialogues.csv"], format="meld", window=1, aux=("speaker", "predict"), labels="unified"
        ),
    ),
    "mer2023": (
        "mer2023 mer_label.csv transcription.csv --language chinese --audio-prefix A/ "
        "--features audio=HL/ --features face=F/ --out OUT",
        lambda d: build_mer2023(
            [d / "mer_label.csv", d / "transcription.csv"],
            language="chinese",
            audio_prefix="A/",
            features=[("audio", "HL/"), ("face", "F/")],
        ),
    ),
    "merr": (
        "merr MERR_fine_grained.json --caption coarse --test-list test_list.txt --allow-overlap "
        "--media frame --out OUT",
        lambda d: build_merr(
            [d / "MERR_fine_grained.json"],
            caption="coarse",
            test_list=d / "test_list.txt",
            allow_overlap=True,
            media="frame",
        ),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_python_call_gives_what_the_command_line_writes(case, tmp_path, capsys):
    folder, out = inputs(tmp_path), tmp_path / "o.json"
    command, call = CASES[case]
    argv = [str(folder / a) if (folder / a).exists() else a for a in command.split()]
    code, printed, _ = build(capsys, *[str(out) if a == "OUT" else a for a in argv])
    assert code == 0, printed
    result = call(folder)
    assert result.records == json.loads(out.read_text(encoding="utf-8")) and result.records
    assert printed == summary(result, out) + "\n"  # the same skips, by the same reasons and rows


def test_build_stages_writes_what_the_command_line_writes(tmp_path, capsys):
    (tmp_path / "built").mkdir()
    (tmp_path / "built/meld.json").write_text(json.dumps(build_meld(inputs(tmp_path) / "m.csv").records))
    config = write_config(
        tmp_path / "stages.yaml", first_stage=[{"file": "built/meld.json", "fraction": 1.0}]
    )
    assert build(capsys, "stages", "--config", config, "--out", tmp_path / "cli")[0] == 0
    manifest = build_stages(str(config), str(tmp_path / "python"))
    assert manifest["stages"]["first_stage"]["tasks"] == {"erc": 1}
    for name in ("first_stage.json", MANIFEST):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "python" / name).read_bytes()


def test_every_option_is_a_keyword_argument_of_the_builder():
    sub = next(a for a in build_parser()._actions if a.dest == "source")
    for name, (function, _) in SOURCES.items():
        options = {a.dest for a in sub.choices[name]._actions} - {"help", *CLI_ONLY}
        keywords = {
            p.name for p in inspect.signature(function).parameters.values() if p.kind == p.KEYWORD_ONLY
        }
        assert options == keywords, name


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda d: build_mosei(d / "label.csv", media="frames"), "media: expected one of frame, video"),
        (lambda d: build_mosei(d / "label.csv", split="dev"), "split: expected one of train, valid, test"),
        (lambda d: build_eri(d / "r.csv", media="clip"), "media: expected one of video, frame"),
        (lambda d: build_fer(d / "openface", threshold=float("nan")), "threshold: expected a finite number"),
        (lambda d: build_dialogue(d / "dialogues.csv", format="csv"), "format: expected one of meld"),
        (lambda d: build_dialogue(d / "dialogues.csv", format="meld", aux=["speakers"]), "aux: expected"),
        (lambda d: build_merr(d / "MERR_fine_grained.json", caption="fine-grained"), "caption: expected"),
        (
            lambda d: build_mer2023([d / "mer_label.csv", d / "transcription.csv"], language="en"),
            "language: expected one of english, chinese",
        ),
    ],
)
def test_a_python_caller_s_bad_choice_is_a_value_error_naming_it(call, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        call(inputs(tmp_path))


def test_the_package_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "m2se.sources", "meld", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "usage: python -m m2se.sources meld" in done.stdout, done.stderr


def test_wrong_argument_types_from_python_name_the_argument(tmp_path):
    from m2se.sources import build_meld
    from m2se.sources.common import InputError

    csv = tmp_path / "m.csv"
    csv.write_text(MELD_HEADER + "\n")
    for inputs in (None, 5, b"m.csv"):
        with pytest.raises(TypeError, match="inputs must be a path or a sequence of paths"):
            build_meld(inputs)
    with pytest.raises(TypeError, match="media_prefix must be a string"):
        build_meld(csv, media_prefix=None)
    with pytest.raises(TypeError, match="media_root must be a path"):
        build_meld(csv, media_root=3)
    with pytest.raises(InputError, match="media root is not a folder"):  # every row read "missing media"
        build_meld(csv, media_root=tmp_path / "nope")
    with pytest.raises(InputError, match=r"absent.csv: no such file \(see docs/DATA.md\)$"):
        build_meld(tmp_path / "absent.csv")

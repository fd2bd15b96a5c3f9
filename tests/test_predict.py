"""predict.py: new clips, images and unanswered records → one JSONL line each, with label probabilities."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from m2se.cli import run
from m2se.data.questions import read_questions
from m2se.model.adapters import Adapter, save_adapter
from m2se.model.internvl import PARTS, load_base
from m2se.model.lora import LoraSettings, add_lora
from m2se.tasks import TASKS
from predict import predict

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(scope="module")
def adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA folder as training writes it, with weights moved off zero (as if trained)."""
    model = add_lora(load_base(tiny_model_dir), LoraSettings(), PARTS)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    return save_adapter(
        [Adapter.of(model)], tmp_path_factory.mktemp("adapter") / "adapter", str(tiny_model_dir)
    )


def config(out: Path, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("predict", overrides=[f"output_dir={out}", "data.num_workers=0", *overrides])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().split("\n")[:-1]]


def test_a_folder_of_clips_gets_one_line_each_with_label_probabilities(
    tiny_model_dir, demo_dir, adapter, tmp_path
):
    clips = tmp_path / "clips"
    clips.mkdir()
    for clip in sorted((demo_dir / "media/clips").glob("*_test0.mp4")):
        shutil.copy(clip, clips)
    (clips / "broken.mp4").write_bytes(b"not a video")
    (clips / "notes.md").write_text("not media")
    cfg = config(
        tmp_path / "run",
        "experiment=demo",
        f"model.path={tiny_model_dir}",
        f"ckpt={adapter}",
        "task=erc",
        f"inputs={clips}",
        "data.batch_size=3",
    )
    writer = predict(cfg)
    got = {line["input"]: line for line in lines(tmp_path / "run/predictions.jsonl")}
    media = sorted(str(p) for p in clips.glob("*.mp4"))
    assert sorted(got) == media  # one line per clip, named by its path; notes.md is not asked about
    broken = got.pop(str(clips / "broken.mp4"))
    assert "broken.mp4" in broken["error"] and broken["response"] is None
    labels = set(TASKS["erc"].labels)
    for line in got.values():
        assert line["task"] == "erc" and isinstance(line["response"], str) and "error" not in line
        assert line["answer"] in labels or line["answer"] is None
        assert set(line["scores"]) == labels and math.isclose(sum(line["scores"].values()), 1, rel_tol=1e-5)
        assert line["score_method"] in ("first_token", "continuation")
    assert writer.counts["error"] == 1 and sum(writer.counts.values()) == len(media)


def test_the_adapter_changes_the_answers_it_is_asked_for(tiny_model_dir, demo_dir, adapter, tmp_path):
    clip = next((demo_dir / "media/clips").glob("*_test0.mp4"))
    common = ["experiment=demo", f"model.path={tiny_model_dir}", "task=erc", f"inputs={clip}"]
    with_adapter = lines(predict(config(tmp_path / "a", *common, f"ckpt={adapter}")).path)[0]["scores"]
    base = lines(predict(config(tmp_path / "b", *common)).path)[0]["scores"]
    assert max(abs(with_adapter[k] - base[k]) for k in base) > 1e-3


def test_unanswered_records_are_questions_and_bad_ones_are_lines(tiny_model_dir, demo_dir, tmp_path):
    records = json.loads((demo_dir / "test/msa.json").read_text())[:2]
    records += json.loads((demo_dir / "test/fer.json").read_text())[:1]
    questions = [{k: v for k, v in r.items() if k != "response"} for r in records[:2]] + [records[2]]
    questions.append({"query": 7})
    path = demo_dir / "questions.jsonl"  # beside the media its records name
    path.write_text("\n".join(json.dumps(q) for q in questions) + "\n")
    cfg = config(tmp_path / "run", "experiment=demo", f"model.path={tiny_model_dir}", f"inputs={path}")
    got = lines(predict(cfg).path)
    by_input = {line["input"]: line for line in got}
    assert len(got) == 4 and by_input["questions.jsonl:4"]["error"] == "'query' is not a string (int)"
    assert [by_input[f"questions.jsonl:{i}"]["task"] for i in (1, 2, 3)] == ["msa", "msa", "fer"]
    assert "label" not in by_input["questions.jsonl:1"] and by_input["questions.jsonl:3"]["label"]
    assert "scores" in by_input["questions.jsonl:1"] and "scores" not in by_input["questions.jsonl:3"]


def test_media_inputs_take_text_or_a_sidecar(tmp_path):
    for name in ("a.mp4", "b.png", "b.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "b.txt").write_text("I did not expect that!\n")
    found = read_questions(str(tmp_path), "erc")
    assert [r.videos or r.images for r in found.records] == [(tmp_path / "a.mp4",), (tmp_path / "b.png",)]
    assert "''" in found.records[0].query and "'I did not expect that!'" in found.records[1].query
    assert all("'Hi.'" in r.query for r in read_questions(str(tmp_path / "*.*"), "erc", "Hi.").records)
    assert found.names == {r.where: str(r.media[0]) for r in found.records} and found.ignored == []


@pytest.mark.parametrize(
    ("inputs", "task", "message"),
    [
        ("missing/*.mp4", "erc", "no file matches it"),
        ("clips", None, "media inputs need task=NAME"),
        ("clips", "ecpe", "give inputs=FILE.jsonl"),
        ("clips", "nope", "unknown task 'nope'"),
        ("empty", "erc", "empty folder"),
        ("other", "erc", "no video or image files"),
    ],
)
def test_inputs_that_ask_nothing_are_one_line(tmp_path, inputs, task, message):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips/a.mp4").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other/a.csv").write_text("x")
    with pytest.raises(ValueError, match=message):
        read_questions(str(tmp_path / inputs), task)


def test_a_control_token_in_the_text_is_a_line_not_a_crash(tiny_model_dir, demo_dir, tmp_path, capsys):
    clip = next((demo_dir / "media/clips").glob("*_test0.mp4"))
    overrides = ["experiment=demo", f"model.path={tiny_model_dir}", "task=erc", f"inputs={clip}"]
    with pytest.raises(SystemExit) as stop:  # every input failed: the lines, then one error
        run(predict, config(tmp_path / "run", *overrides, "text='<IMG_CONTEXT>'"))
    (line,) = lines(tmp_path / "run/predictions.jsonl")
    assert line["input"] == str(clip) and "control token" in line["error"]
    assert "1 error" in capsys.readouterr().out and "every input failed" in str(stop.value.code)


def test_a_record_file_whose_media_are_elsewhere_says_media_root(tiny_model_dir, demo_dir, tmp_path):
    common = ["experiment=demo", f"model.path={tiny_model_dir}", f"inputs={demo_dir / 'test/msa.json'}"]
    with pytest.raises(SystemExit) as stop:  # its media paths are relative to the dataset folder
        run(predict, config(tmp_path / "a", *common))
    assert "every input failed" in str(stop.value.code) and "media_root=" in str(stop.value.code)
    writer = predict(config(tmp_path / "b", *common, f"media_root={demo_dir}"))
    assert writer.counts["error"] == 0 and sum(writer.counts.values()) == 40


def test_an_adapter_that_hears_gets_the_clip_sound(tiny_model_dir, demo_dir, tmp_path):
    """Two mer2023 clips with the same frames and different sound: told apart only with the audio adapter."""
    from m2se.data import internvl
    from m2se.model.internvl import InternVL
    from m2se.model.module import M2SEModule
    from m2se.model.tiny import build_tiny_audio_encoder

    encoder = build_tiny_audio_encoder(tmp_path / "hubert")
    audio = {"encoder": str(encoder), "tokens": 8, "tasks": ["mer2023"], "max_seconds": 2.0}
    module = M2SEModule(InternVL(str(tiny_model_dir)), internvl.from_pretrained(tiny_model_dir, audio=audio))
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    adapter = module.save_adapter(tmp_path / "adapter")
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("mer2023_happy_test0.mp4", "mer2023_sad_test0.mp4"):
        shutil.copy(demo_dir / "media/clips" / name, clips)
    common = ["experiment=demo_audio", f"model.path={tiny_model_dir}", "task=mer2023", f"inputs={clips}"]
    heard = lines(
        predict(config(tmp_path / "a", *common, f"ckpt={adapter}", f"model.audio.encoder={encoder}")).path
    )
    deaf = lines(predict(config(tmp_path / "b", *common, "model/audio=none")).path)
    assert len(heard) == len(deaf) == 2 and all("error" not in line for line in heard + deaf)
    gap = [max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) for a, b in (heard, deaf)]
    assert gap[0] > 1e-4 and gap[1] < 1e-6, gap


def test_what_cannot_be_asked_is_a_line_or_one_error(tiny_model_dir, demo_dir, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(next((demo_dir / "media/clips").glob("*_test0.mp4")), clips / "good.mp4")
    (clips / "folder.mp4").mkdir()
    (clips / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    found = read_questions(str(clips), "erc")
    assert [r.videos[0].name for r in found.records] == ["good.mp4"]
    assert sorted(Path(where).name for where, _ in found.errors) == ["folder.mp4", "gone.mp4"]
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ValueError, match="no records"):
        read_questions(str(tmp_path / "empty.jsonl"), None)
    with pytest.raises(ValueError, match="built by m2se.dialogue.prompts"):
        read_questions(str(clips), "speaker_id")
    common = ["experiment=demo", f"model.path={tiny_model_dir}", "task=erc"]
    for override, message in [
        ("scores=maybe", "scores must be true or false"),
        ("text=[a,b]", "text must be a string"),
        (f"out={clips / 'good.mp4'}", "is one of the inputs"),
    ]:
        with pytest.raises(SystemExit) as stop:
            run(predict, config(tmp_path / "r", *common, f"inputs={clips}", override))
        assert message in str(stop.value.code)
    assert (clips / "good.mp4").stat().st_size > 1000  # not overwritten


def test_a_query_cut_to_the_budget_says_so(tiny_model_dir, demo_dir, tmp_path, capsys):
    clip = next((demo_dir / "media/clips").glob("*_test0.mp4"))
    words = " ".join(["word"] * 3000)
    writer = predict(config(tmp_path / "r", "experiment=demo", f"model.path={tiny_model_dir}", "task=erc",
                            f"inputs={clip}", f"text='{words}'"))  # fmt: skip
    (line,) = lines(writer.path)
    assert line["truncated"] is True and writer.truncated == 1
    assert "1 queries were cut to data.processor.max_length" in capsys.readouterr().err

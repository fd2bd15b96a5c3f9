import json
import re
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from m2se.data.demo import (
    AUDIO_RATE,
    EMOTION_LOOKS,
    MER2023_PITCHES,
    ecpe_causes,
    emotion_of,
    main,
    write_demo_dataset,
)
from m2se.data.video import read_image, read_video
from m2se.tasks import ECPE_EMOTIONS, TASKS, infer_task, normalize, parse_pairs
from m2se.templates import Utterance

STAGE_TASKS = {
    "first_stage": {"msa", "mer", "fer"},
    "second_stage": {"msa", "eri", "erc", "ecpe"},
    "audio_stage": {"mer2023"},
}
TEST_TASKS = ("msa", "mer", "erc", "fer", "eri", "ecpe", "mer2023")


def _load(demo_dir: Path, name: str) -> list[dict]:
    return json.loads((demo_dir / name).read_text(encoding="utf-8"))


def _by_task(demo_dir: Path, task: str) -> tuple[list[dict], list[dict]]:
    train = [
        r for stage in STAGE_TASKS for r in _load(demo_dir, f"{stage}.json") if infer_task(r["query"]) == task
    ]
    return train, _load(demo_dir, f"test/{task}.json")


def _conversation(query: str) -> tuple[list[Utterance], int]:
    lines = query.split("Input conversation:")[1].split("\nCandidate utterances:")[0].split("\n")
    parsed = [re.fullmatch(r"(\d+)_(\w+)\. (\w+): (.*)", line).groups() for line in lines]
    target = int(re.search(r"\nTarget utterance:(\d+)_", query)[1])
    return [Utterance(speaker, text, emotion) for _, emotion, speaker, text in parsed], target


def test_stage_and_test_files_hold_their_tasks(demo_dir):
    for stage, tasks in STAGE_TASKS.items():
        records = _load(demo_dir, f"{stage}.json")
        assert {infer_task(r["query"]) for r in records} == tasks
    for task in TEST_TASKS:
        assert {infer_task(r["query"]) for r in _load(demo_dir, f"test/{task}.json")} == {task}
    # msa: a high share of stage one, a low share of stage two.
    shares = [Counter(infer_task(r["query"]) for r in _load(demo_dir, f"{s}.json")) for s in STAGE_TASKS]
    assert shares[0]["msa"] / shares[0].total() > 0.3 > 0.15 > shares[1]["msa"] / shares[1].total()


def test_records_are_valid_emt(demo_dir):
    for path in sorted(demo_dir.rglob("*.json")):
        for record in json.loads(path.read_text(encoding="utf-8")):
            task = infer_task(record["query"])
            media_key = "images" if task in ("msa", "mer", "fer") else "videos"
            ecpe_key = {"conversation_ID"} if task == "ecpe" else set()
            assert set(record) == {"query", "response", media_key} | ecpe_key, path
            assert len(record[media_key]) == 1 and not Path(record[media_key][0]).is_absolute()
            assert TASKS[task].check_response(record["response"]) is None, (path, record["response"])
            assert TASKS[task].parse(record["response"]) is not None or task == "ecpe"


def test_every_media_file_decodes(demo_dir):
    records = [r for path in demo_dir.rglob("*.json") for r in json.loads(path.read_text(encoding="utf-8"))]
    media = {m for r in records for m in r.get("images", []) + r.get("videos", [])}
    assert len(media) > 700
    for relative in media:
        if relative.endswith(".png"):
            assert read_image(demo_dir / relative).shape == (64, 64, 3)
        else:
            assert read_video(demo_dir / relative, 8, None).shape == (8, 64, 64, 3)


def test_test_records_use_their_own_media(demo_dir):
    for task in TEST_TASKS:
        train, test = _by_task(demo_dir, task)
        media = [
            {m for r in records for m in r.get("images", []) + r.get("videos", [])}
            for records in (train, test)
        ]
        assert media[0] and media[1] and not media[0] & media[1], task


def test_utterances_never_name_a_label(demo_dir):
    label_words = {normalize(label) for task in TASKS.values() for label in task.labels}
    label_words |= set(ECPE_EMOTIONS) | {"happy", "sad", "angry", "afraid", "disgusted", "surprised"}
    for task in ("msa", "mer", "erc", "fer", "eri"):
        for record in [*_by_task(demo_dir, task)[0], *_by_task(demo_dir, task)[1]]:
            utterance = re.match(r"The person says: '(.*)' <", record["query"])[1]
            assert not set(normalize(utterance).split()) & label_words, utterance
    for record in [*_by_task(demo_dir, "mer2023")[0], *_by_task(demo_dir, "mer2023")[1]]:
        subtitle = re.match(r"The person in video says: (\w[\w ]*)\.  \[emotion\] ", record["query"])[1]
        assert not set(normalize(subtitle).split()) & label_words, subtitle


def test_ecpe_records_have_valid_causes(demo_dir):
    train, test = _by_task(demo_dir, "ecpe")
    kinds = Counter()
    for record in train + test:
        conversation, target = _conversation(record["query"])
        assert 3 <= len(conversation) <= 6 and conversation[target - 1].emotion != "neutral"
        pairs = parse_pairs(record["response"], strict=True)
        assert all(t == target and e == conversation[t - 1].emotion and 1 <= c <= t for t, e, c in pairs)
        assert [c for _, _, c in pairs] == ecpe_causes(conversation, target)
        expected_clip = f"media/clips/{conversation[target - 1].emotion}_"
        assert record["videos"][0].startswith(expected_clip)
        kinds.update(["no cause"] if not pairs else ["self" if c == t else "previous" for t, _, c in pairs])
    assert set(kinds) == {"no cause", "self", "previous"}, kinds


def test_ecpe_records_of_one_conversation_share_its_id_and_text(demo_dir):
    for records in _by_task(demo_dir, "ecpe"):
        conversations = {}
        for record in records:
            conversation, target = _conversation(record["query"])
            conversations.setdefault(record["conversation_ID"], []).append((conversation, target))
        assert sorted(conversations) == list(range(1, len(conversations) + 1))
        for turns in conversations.values():
            assert all(c == turns[0][0] for c, _ in turns) and len({t for _, t in turns}) == len(turns)


def test_ecpe_causes_follow_the_target_emotion():
    emotions = ["surprise", "neutral", "joy", "fear", "disgust", "sadness"]
    conversation = [Utterance("Sam", "Hi.", emotion) for emotion in emotions]
    causes = {t: ecpe_causes(conversation, t) for t, e in enumerate(emotions, start=1) if e != "neutral"}
    assert causes == {1: [], 3: [3], 4: [3], 5: [], 6: [6]}  # surprise first: no utterance before it


def test_eri_reasons_name_what_the_clip_shows(demo_dir):
    for record in [r for records in _by_task(demo_dir, "eri") for r in records]:
        emotion = Path(record["videos"][0]).name.split("_")[0]
        colour, _, shape, motion, state = EMOTION_LOOKS[emotion]
        assert record["response"] == f"The person is {state}: a {colour} {shape} {motion} in the video."


def test_same_seed_same_files_other_seed_other_files(demo_dir, tmp_path):
    again, other = (
        write_demo_dataset(tmp_path / "again", seed=0),
        write_demo_dataset(tmp_path / "other", seed=1),
    )
    for name in ("first_stage.json", "second_stage.json", "test/ecpe.json", "audio_stage.json"):
        assert (again / name).read_bytes() == (demo_dir / name).read_bytes()
        assert (other / name).read_bytes() != (demo_dir / name).read_bytes()
    assert (again / "media/images/fer_test_0001.png").read_bytes() == (
        demo_dir / "media/images/fer_test_0001.png"
    ).read_bytes()
    for clip in ("joy_train0.mp4", "anger_test1.mp4"):
        np.testing.assert_array_equal(
            read_video(again / "media/clips" / clip, 8, None),
            read_video(demo_dir / "media/clips" / clip, 8, None),
        )


def test_dataset_is_small(demo_dir):
    assert sum(f.stat().st_size for f in demo_dir.rglob("*") if f.is_file()) < 5e6


def test_command_line_writes_and_summarizes(tmp_path, capsys):
    main(["--out", str(tmp_path / "demo"), "--seed", "3", "--test-size", "5"])
    printed = capsys.readouterr().out
    assert "test/ecpe.json: 5 records (ecpe 5)" in printed and "MB" in printed
    assert len(_load(tmp_path / "demo", "test/mer.json")) == 5


def _nearest_centroid_accuracy(
    train: list[tuple[np.ndarray, str]], test: list[tuple[np.ndarray, str]]
) -> float:
    classes = sorted({label for _, label in train})
    centroids = np.stack([np.mean([f for f, label in train if label == c], axis=0) for c in classes])
    predicted = [classes[np.linalg.norm(centroids - f, axis=1).argmin()] for f, _ in test]
    return float(np.mean([p == label for p, (_, label) in zip(predicted, test, strict=True)]))


def _features(demo_dir: Path, record: dict) -> np.ndarray:
    """What survives a tiny model's downscale: the picture (or mean sampled frame) at 8 x 8 px."""
    if "images" in record:
        pixels = read_image(demo_dir / record["images"][0])[None]
    else:
        pixels = read_video(demo_dir / record["videos"][0], 8, None)
    return pixels.reshape(len(pixels), 8, 8, 8, 8, 3).mean(axis=(0, 2, 4)).ravel()


@pytest.mark.parametrize("task", ["msa", "mer", "fer", "erc"])
def test_pictures_carry_the_answer(demo_dir, task):
    train, test = ([(_features(demo_dir, r), r["response"]) for r in rs] for rs in _by_task(demo_dir, task))
    assert _nearest_centroid_accuracy(train, test) >= 0.8  # chance: 0.5 (msa) to 0.1 (fer)


def test_msa_is_warm_or_cold_and_emotion_hues_are_distinct(demo_dir):
    for record in _by_task(demo_dir, "msa")[1]:
        red, _, blue = read_image(demo_dir / record["images"][0]).reshape(-1, 3).mean(axis=0)
        assert (red > blue) == (record["response"] == "Positive.")
    colours = np.array([rgb for _, rgb, *_ in EMOTION_LOOKS.values()], float)
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    assert distances[~np.eye(len(colours), dtype=bool)].min() > 100
    assert {emotion_of(label) for label in TASKS["erc"].labels} == set(EMOTION_LOOKS) == set(ECPE_EMOTIONS)


def _audio(path: Path) -> tuple[np.ndarray, int, int]:
    """The decoded mono samples of a clip's audio stream, its sample rate and channel count."""
    with av.open(str(path)) as container:
        [stream] = container.streams.audio
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
        return samples, stream.codec_context.sample_rate, stream.codec_context.channels


def _mer2023_clips(demo_dir: Path) -> dict[str, str]:
    """Every mer2023 clip and its label."""
    records = [r for records in _by_task(demo_dir, "mer2023") for r in records]
    clips = {r["videos"][0]: r["response"] for r in records}
    assert len(clips) == len({(r["videos"][0], r["response"]) for r in records})  # one label per clip
    assert set(clips.values()) == set(MER2023_PITCHES)
    return clips


def test_mer2023_records_have_every_label_and_their_sizes(demo_dir):
    train, test = _by_task(demo_dir, "mer2023")
    assert len(train) == 240 and len(test) == 40
    assert {r["response"] for r in train} == set(TASKS["mer2023"].labels)
    assert all(TASKS["mer2023"].parse(r["response"]) == r["response"] for r in train + test)


def test_mer2023_clips_sound_the_labels_pitch(demo_dir):
    pitches = np.array(list(MER2023_PITCHES.values()))
    assert np.diff(np.log2(pitches)).min() == pytest.approx(0.5)  # half an octave apart
    for clip, label in _mer2023_clips(demo_dir).items():
        samples, rate, channels = _audio(demo_dir / clip)
        assert rate == AUDIO_RATE == 16_000 and channels == 1 and len(samples) >= 2 * rate
        spectrum = np.abs(np.fft.rfft(samples))
        peak = np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()]
        assert abs(peak / MER2023_PITCHES[label] - 1) < 0.04, (clip, peak)
        assert list(MER2023_PITCHES)[np.abs(np.log2(pitches / peak)).argmin()] == label


def test_mer2023_frames_are_the_same_for_every_label(demo_dir):
    clips = _mer2023_clips(demo_dir)
    reference = read_video(demo_dir / next(iter(clips)), 8, None)
    for clip in clips:
        np.testing.assert_array_equal(read_video(demo_dir / clip, 8, None), reference)
    assert reference.std() < 20 and abs(reference.mean() - 128) < 5  # grey, faint noise


def test_other_clips_have_no_sound(demo_dir):
    with av.open(str(demo_dir / "media/clips/joy_train0.mp4")) as container:
        assert not container.streams.audio

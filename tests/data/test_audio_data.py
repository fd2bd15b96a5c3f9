"""Hearing on the data side: sound from clips and wav files, feature files, placeholders, drops and skips."""

import json
import wave

import av
import numpy as np
import pytest
import torch

from m2se.audio_settings import AudioSettings
from m2se.data import internvl
from m2se.data.audio import AudioLoader, Heard, NoAudioError, check_tasks, read_audio, read_features
from m2se.data.datamodule import MultiTaskDataModule
from m2se.data.dataset import Collator, EncodedDataset, prompts_of
from m2se.data.processor import IGNORE_INDEX
from m2se.data.records import RecordError, load_records
from m2se.data.video import MediaError, MediaLoader
from m2se.model.tiny import build_tiny_audio_encoder
from m2se.tasks import TASKS


def tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    return (0.4 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def write_clip(path, seconds: float = 1.0, hz: float | None = 440.0, rate: int = 22_050):
    """A 32-px H.264 clip at 8 fps, with an AAC tone at ``hz`` (None: no audio stream)."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=8)
        video.height = video.width = 32
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=rate, layout="mono") if hz else None
        for _ in range(int(8 * seconds)):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 90, np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            samples = tone(hz, seconds, rate)
            for start in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], "fltp", "mono")
                chunk.sample_rate, chunk.pts = rate, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    return path


def write_wav(path, samples: np.ndarray, rate: int):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return build_tiny_audio_encoder(tmp_path_factory.mktemp("hubert") / "tiny-hubert")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    write_clip(root / "loud.mp4", seconds=1.0, hz=440)
    write_clip(root / "silent.mp4", hz=None)
    write_wav(root / "voice.wav", tone(300, 0.5, 8000), 8000)
    np.save(root / "face_vector.npy", np.arange(6, dtype=np.float32))
    np.save(root / "face_sequence.npy", np.ones((5, 6), np.float32))
    np.save(root / "face_wide.npy", np.ones((5, 7), np.float32))
    np.save(root / "face_cube.npy", np.ones((2, 3, 6), np.float32))
    (root / "face_text.npy").write_text("not numpy")
    return root


def test_sound_track_of_a_clip_is_resampled_to_the_encoder_rate(media):
    samples = read_audio(media / "loud.mp4", 16_000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 16_000) < 0.1 * 16_000  # ≈ 1 s; AAC adds a few ms of priming
    assert abs(peak_hz(samples, 16_000) - 440) < 5  # a wrong rate would move the tone
    assert len(read_audio(media / "loud.mp4", 16_000, max_seconds=0.25)) == 4_000


def test_a_wav_file_is_read_and_resampled(media):
    samples = read_audio(media / "voice.wav", 16_000)
    assert abs(len(samples) - 8_000) <= 64 and abs(peak_hz(samples, 16_000) - 300) < 5


def test_clips_without_sound_and_missing_files_raise_naming_the_file(media, tmp_path):
    with pytest.raises(NoAudioError, match=r"silent\.mp4: no audio stream"):
        read_audio(media / "silent.mp4", 16_000)
    with pytest.raises(MediaError, match=r"gone\.wav: missing file"):
        read_audio(tmp_path / "gone.wav", 16_000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(40))
    with pytest.raises(MediaError, match=r"junk\.wav: corrupt audio"):
        read_audio(tmp_path / "junk.wav", 16_000)


def test_feature_files_are_vectors_or_sequences(media):
    vector = read_features(media / "face_vector.npy", dim=6)
    assert vector.shape == (1, 6) and vector.dtype == np.float32 and vector[0, 5] == 5
    assert read_features(media / "face_sequence.npy", dim=6).shape == (5, 6)
    with pytest.raises(MediaError, match=r"face_wide\.npy: features of width 7, expected 6"):
        read_features(media / "face_wide.npy", dim=6)
    with pytest.raises(MediaError, match=r"face_cube\.npy: expected a vector or a \(T, D\)"):
        read_features(media / "face_cube.npy")
    with pytest.raises(MediaError, match=r"face_text\.npy: unreadable feature file"):
        read_features(media / "face_text.npy")
    with pytest.raises(MediaError, match=r"nothing\.npy: missing file"):
        read_features(media / "nothing.npy")


def test_settings_are_checked(tiny_model_dir):
    with pytest.raises(ValueError, match=r"unknown tasks \['hearing'\]"):
        check_tasks(AudioSettings(encoder="x", tasks=["hearing"]))  # where the tasks are known
    with pytest.raises(ValueError, match=r"unknown tasks \['hearing'\]"):  # so no processor takes them
        internvl.from_pretrained(tiny_model_dir, audio={"tasks": ["hearing"]})
    with pytest.raises(ValueError, match="missing must be 'drop' or 'skip'"):
        AudioSettings(missing="ignore")
    with pytest.raises(ValueError, match="view name 'Face.1'"):
        AudioSettings(features={"Face.1": {"dim": 4}})
    settings = AudioSettings(encoder="x", tasks=["mer2023"], features={"face": {"dim": 4}})
    assert settings.applies_to("mer2023") and not settings.applies_to("msa")
    assert not AudioSettings().applies_to("mer2023")  # off unless an encoder or a view is set
    assert AudioSettings(**settings.to_dict()) == settings  # what audio_config.json stores


def emt(root, records: list[dict]):
    path = root / "records.json"
    path.write_text(json.dumps(records))
    return path


def mer2023(subtitle: str = "hello there", **media) -> dict:
    return {"query": TASKS["mer2023"].query(subtitle), "response": "happy", **media}


def test_records_resolve_audio_and_feature_paths_against_the_media_root(media, tmp_path, processor):
    path = emt(tmp_path, [mer2023(videos=["loud.mp4"], audio="voice.wav", features={"face": "f.npy"})])
    record = load_records(path, media).records[0]
    assert record.audio == media / "voice.wav" and record.features == {"face": media / "f.npy"}
    assert "audio" not in record.meta and "features" not in record.meta
    # Sound or features alone are media enough; a features-only sample has no pixels and one placeholder.
    only_features = load_records(
        emt(tmp_path, [mer2023(features={"face": "face_vector.npy"})]), media
    ).records
    _, sample = dataset(processor, only_features)[0]
    assert (
        sample.pixel_values is None
        and sample.dropped == ("audio",)
        and list(sample.feature_masks) == ["face"]
    )
    with pytest.raises(RecordError, match=r"records\.json:0: no media"):
        load_records(emt(tmp_path, [mer2023()]), media)
    for bad in ({"features": "f.npy"}, {"features": {"face": 3}}, {"audio": ["a.wav"]}):
        path = emt(tmp_path, [mer2023(videos=["loud.mp4"]), mer2023(videos=["silent.mp4"], **bad)])
        with pytest.raises(RecordError, match=r"records\.json:1: '(features|audio)' must be"):
            load_records(path, media)


@pytest.fixture(scope="module")
def processor(tiny_model_dir, encoder):
    settings = {
        "encoder": str(encoder),
        "tokens": 3,
        "tasks": ["mer2023"],
        "features": {"face": {"dim": 6, "tokens": 2}},
    }
    return internvl.from_pretrained(tiny_model_dir, audio=settings)


def test_placeholders_follow_the_media_and_are_marked(processor):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)
    sample = processor(
        "Hi.", "Joy.", videos=[frames], audio=tone(440, 0.5, 16_000), features={"face": np.ones((4, 6))}
    )
    text = processor.tokenizer.decode(sample.input_ids)
    assert "</img>\nAudio: <pad><pad><pad>\nFace features: <pad><pad>\nHi." in text
    audio, face = sample.audio_mask.nonzero().flatten(), sample.feature_masks["face"].nonzero().flatten()
    assert len(audio) == 3 and len(face) == 2 and audio[-1] < face[0]
    assert (sample.input_ids[sample.audio_mask] == processor.tokenizer.pad_token_id).all()
    assert (sample.labels[sample.audio_mask] == IGNORE_INDEX).all()
    # Normalised as the encoder's feature extractor does (zero mean, unit variance).
    assert abs(float(sample.audio_values.mean())) < 1e-3 and abs(float(sample.audio_values.std()) - 1) < 1e-2
    assert sample.num_text_tokens == len(sample.input_ids) - 8 - 5
    assert processor.count_tokens("Hi.", "Joy.", video_frames=[2], audio=True, views=["face"]) == len(
        sample.input_ids
    )
    with pytest.raises(ValueError, match=r"features\['face'\]: expected \(T, 6\), got \(4, 5\)"):
        processor("Hi.", features={"face": np.ones((4, 5))})
    with pytest.raises(ValueError, match="unknown view 'body'"):
        processor("Hi.", features={"body": np.ones((4, 6))})


@pytest.mark.parametrize("side", ["right", "left"])
def test_masks_are_padded_with_the_tokens(processor, side):
    long = processor("A much longer query than the other one.", "Joy.", audio=tone(440, 0.5, 16_000))
    short = processor("Hi.", "Joy.")  # no placeholder: an all-False row, no values
    batch = processor.collate([long, short, long], padding_side=side)
    assert batch["audio_mask"].shape == batch["input_ids"].shape and len(batch["audio_values"]) == 2
    assert not batch["audio_mask"][1].any()
    for row in (0, 2):
        assert (batch["input_ids"][row][batch["audio_mask"][row]] == processor.audio_token_id).all()
        assert int(batch["audio_mask"][row].sum()) == 3
    shift = batch["input_ids"].shape[1] - len(long.input_ids) if side == "left" else 0
    assert torch.equal(
        batch["audio_mask"][0].nonzero().flatten(), long.audio_mask.nonzero().flatten() + shift
    )
    assert "feature_masks" not in batch and "audio_mask" not in processor.collate([short])


def test_prompts_keep_the_placeholders_in_place(processor):
    samples = [processor("Hi.", "Joy.", audio=tone(440, 0.5, 16_000)), processor("A longer one.", "Sad.")]
    prompts = prompts_of(processor.collate(samples), processor.tokenizer.pad_token_id)
    expected = processor.collate(
        [processor("Hi.", None, audio=tone(440, 0.5, 16_000)), processor("A longer one.", None)], "left"
    )
    assert torch.equal(prompts["input_ids"], expected["input_ids"])
    assert torch.equal(prompts["audio_mask"], expected["audio_mask"])


def dataset(processor, records, on_media_error="skip"):
    return EncodedDataset(records, processor, MediaLoader(2, 56, 1), on_media_error)


def test_records_without_sound_drop_the_placeholder_or_are_skipped_and_counted(
    processor, media, tmp_path, tiny_model_dir
):
    records = load_records(
        emt(
            tmp_path,
            [
                mer2023(videos=["loud.mp4"], features={"face": "face_sequence.npy"}),
                mer2023(videos=["silent.mp4"], features={"face": "face_vector.npy"}),
                mer2023("hi", videos=["silent.mp4"], audio="voice.wav"),  # the record's own sound file wins
                {"query": TASKS["msa"].query("Hi."), "response": "Positive.", "videos": ["loud.mp4"]},
            ],
        ),
        media,
    ).records
    batch = Collator(processor)([dataset(processor, records)[i] for i in range(4)])
    assert not batch["skipped"]
    assert batch["dropped"] == {"audio": ["records.json:1"], "face features": ["records.json:2"]}
    assert batch["audio_mask"].sum(1).tolist() == [3, 0, 3, 0]  # msa does not opt in
    assert batch["feature_masks"]["face"].sum(1).tolist() == [2, 2, 0, 0]
    assert abs(len(batch["audio_values"][1]) - 8_000) <= 64  # the 0.5 s wav, not the 1 s clip
    settings = {**processor.audio.to_dict(), "missing": "skip"}
    skipping = internvl.from_pretrained(tiny_model_dir, audio=settings)
    batch = Collator(skipping)([dataset(skipping, records)[i] for i in range(4)])
    assert [(s.where, s.reason) for s in batch["skipped"]] == [
        ("records.json:1", "no audio"),
        ("records.json:2", "no face features"),
    ]
    assert len(batch["records"]) == 2 and not batch["dropped"]

    module = MultiTaskDataModule([], {"first": {"mer2023": 1}}, processor, on_media_error="skip")
    module.on_after_batch_transfer(Collator(processor)([dataset(processor, records)[i] for i in range(2)]), 0)
    module.on_after_batch_transfer(Collator(processor)([dataset(processor, records)[1]]), 0)
    assert module.dropped == {"audio": 2}


def test_bad_feature_files_are_a_media_error_naming_the_record(processor, media, tmp_path):
    records = load_records(
        emt(tmp_path, [mer2023(videos=["loud.mp4"], features={"face": "face_cube.npy"})]), media
    ).records
    _, skip = dataset(processor, records)[0]
    assert skip.reason == "media error" and "face_cube.npy: expected a vector" in skip.message
    with pytest.raises(MediaError, match=r"^records\.json:0: .*face_cube\.npy: expected a vector"):
        dataset(processor, records, on_media_error="raise")[0]


def test_loader_leaves_tasks_that_do_not_opt_in_alone(media, tmp_path):
    msa = {"query": TASKS["msa"].query("Hi."), "response": "Positive.", "videos": ["silent.mp4"]}
    records = load_records(emt(tmp_path, [msa, mer2023(videos=["silent.mp4"])]), media).records
    settings = AudioSettings(encoder="unused", tasks=["mer2023"])
    assert AudioLoader(settings, 16_000).load(records[0]) == Heard()
    assert AudioLoader(settings, 16_000).load(records[1]).dropped == ("audio",)
    with pytest.raises(NoAudioError, match="silent.mp4: no audio stream"):
        AudioLoader(AudioSettings(encoder="unused", missing="skip"), 16_000).load(records[1])


def test_a_feature_header_claiming_more_than_the_file_holds_is_a_media_error(tmp_path):
    import io

    header = io.BytesIO()  # (10^6, 10^6) float32: 4 TB claimed, 16 bytes present (a MemoryError before)
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    (tmp_path / "huge.npy").write_bytes(header.getvalue() + b"\0" * 16)
    with pytest.raises(MediaError, match="huge.npy: unreadable feature file"):
        read_features(tmp_path / "huge.npy")

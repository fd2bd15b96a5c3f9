"""The demo dataset: a small synthetic EmoVerse, in EmoVerse's own file format, that a tiny model can learn.

    python -m m2se.data.demo --out data/demo [--seed 0]

Writes ``first_stage.json`` (msa, mer, fer), ``second_stage.json`` (msa, eri, erc, ecpe),
``audio_stage.json`` (mer2023) and ``test/<task>.json``: ms-swift query/response lists, media paths
relative to the output folder, 64-px PNGs under ``media/images`` and 16-frame H.264 clips under
``media/clips``. Utterances are bland filler that never names a label, so only the media tell the answer:
- msa: the image's dominant colour, warm (Positive) or cold (Negative);
- mer, erc, eri: the emotion's big saturated shape (``EMOTION_LOOKS``), moving in clips;
- fer: a drawn face whose eyes and mouth pick the phrases (``EYES``, ``MOUTHS``);
- ecpe: dialogues whose causes follow ``ecpe_causes`` from the given emotions;
- mer2023: only the sound: the clips (``mer2023_*.mp4``) show the same grey picture for every label
  and carry a 16 kHz mono AAC tone whose pitch is the label's (``MER2023_PITCHES``).
Test records use their own images and clips. Same seed, same files; the mer2023 part has its own
random stream, so the other files are what they were before it existed.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import random
import time
from collections import Counter
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from m2se.files import dumps
from m2se.tasks import ECPE_EMOTIONS, TASKS, infer_task
from m2se.templates import Utterance, ecpe_query

TRAIN_SIZES = {
    "first_stage": {"msa": 200, "mer": 150, "fer": 200},
    "second_stage": {"msa": 50, "eri": 120, "erc": 200, "ecpe": 120},
}
TEST_TASKS = ("msa", "mer", "erc", "fer", "eri", "ecpe")
SIZE, CLIP_FRAMES, CLIP_VARIANTS = 64, 16, {"train": 6, "test": 2}
FPS, AUDIO_RATE, AUDIO_TRAIN_SIZE, AUDIO_CLIP_VARIANTS = 8, 16_000, 240, {"train": 4, "test": 2}
# One tone per MER2023 label, half an octave apart (220 Hz * 2^(i/2)); per-clip jitter stays within 3%.
MER2023_PITCHES = {label: 220 * 2 ** (i / 2) for i, label in enumerate(TASKS["mer2023"].labels)}

# ECPE emotion name -> colour name, RGB, shape, motion, and how eri's reasons name the feeling.
# Hues stay far apart after the 56-px downscale of a tiny model.
EMOTION_LOOKS = {
    "anger": ("red", (220, 40, 40), "square", "shakes", "anger"),
    "disgust": ("green", (50, 165, 50), "cross", "recoils to the left", "disgust"),
    "fear": ("magenta", (195, 50, 195), "diamond", "shrinks", "fear"),
    "joy": ("yellow", (240, 210, 40), "circle", "bounces", "happiness"),
    "neutral": ("grey", (150, 150, 150), "bar", "stays still", "a calm, neutral state"),
    "sadness": ("blue", (40, 70, 210), "falling triangle", "sinks", "sadness"),
    "surprise": ("cyan", (40, 205, 215), "ring", "grows", "surprise"),
}
# Unit-radius outlines of the shapes that are polygons (circle and ring are ellipses).
_POLYGONS = {
    "square": ((-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)),
    "bar": ((-1, -0.35), (1, -0.35), (1, 0.35), (-1, 0.35)),
    "diamond": ((0, -1), (1, 0), (0, 1), (-1, 0)),
    "falling triangle": ((-1, -0.8), (1, -0.8), (0, 1)),
    # One arm's corners, turned four times by 90 degrees.
    "cross": tuple(
        ((u, v), (-v, u), (-u, -v), (v, -u))[k]
        for k in range(4)
        for u, v in ((-0.3, -1), (0.3, -1), (0.3, -0.3))
    ),
}
EYES = {"wide": "Eyes widening", "narrow": "Eyes narrowing", "plain": None}
MOUTHS = {"smile": "Smiling", "frown": "Lip corners down", "open": "Jaw dropping", "flat": "Lips pressed"}
SPEAKERS = ("Alex", "Sam", "Jordan", "Riley", "Casey")
_FILLER = (
    ("I", "We", "My cousin", "The neighbour", "Our team", "She", "He", "They"),
    ("moved", "carried", "counted", "checked", "ordered", "parked", "fixed", "found", "sorted", "labelled"),
    ("the boxes", "a chair", "the folder", "two tickets", "the car", "some bread", "the printer", "a lamp"),
    ("on Tuesday", "after lunch", "this morning", "last week", "before the meeting", "at noon", "again"),
)
_REASONS = (
    "The person seems to feel {feeling}. A {colour} {shape} fills the clip and {motion}, the visible cue "
    "of {feeling}; the spoken words are everyday small talk and add nothing.",
    "Emotional state: {feeling}. The video is dominated by a {colour} {shape} that {motion}, which points "
    "to {feeling}, while what the person says is neutral filler.",
    "What is seen decides it: a {colour} {shape} {motion} throughout the clip, so the person's emotional "
    "state is {feeling}. The words alone would not tell.",
)


def emotion_of(label: str) -> str:
    """The ECPE emotion name of an mer/erc label (``Happy`` and ``Joy`` are both joy)."""
    return {"happy": "joy"}.get(label.lower(), label.lower())


def ecpe_causes(conversation: list[Utterance], target: int) -> list[int]:
    """The demo's cause rule for the 1-based ``target``: the previous utterance when it is emotional,
    and the target itself for joy, anger, sadness or surprise (so fear or disgust after a neutral
    utterance has no cause)."""
    causes = [target - 1] if target > 1 and conversation[target - 2].emotion != "neutral" else []
    self_caused = conversation[target - 1].emotion in {"joy", "anger", "sadness", "surprise"}
    return causes + ([target] if self_caused else [])


# Marks a folder as the demo's: experiment=demo writes missing demo files only into such a folder.
DEMO_MARK = ".m2se-demo"


def write_demo_dataset(out_dir: str | Path, seed: int = 0, test_size: int = 40) -> Path:
    """Write the demo dataset into ``out_dir`` (its files are overwritten) and return ``out_dir``."""
    out = Path(out_dir)
    for folder in ("media/images", "media/clips", "test"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    builder = _Builder(out, random.Random(seed))
    for stage, sizes in TRAIN_SIZES.items():
        records = [record for task, n in sizes.items() for record in builder.records(task, "train", n)]
        builder.rng.shuffle(records)
        _write_json(out / f"{stage}.json", records)
    for task in TEST_TASKS:
        _write_json(out / "test" / f"{task}.json", builder.records(task, "test", test_size))
    # Written last, from its own random stream: the files above stay byte-identical.
    tones = _ToneBuilder(out, random.Random(f"mer2023-{seed}"))
    _write_json(out / "audio_stage.json", tones.records("train", AUDIO_TRAIN_SIZE))
    _write_json(out / "test" / "mer2023.json", tones.records("test", test_size))
    (out / DEMO_MARK).write_text("written by python -m m2se.data.demo (experiment=demo may rewrite it)\n")
    return out


class _Builder:
    def __init__(self, out: Path, rng: random.Random) -> None:
        self.out, self.rng, self.images = out, rng, Counter()
        # Clips are reused across records (encoding one per record would cost seconds): a few
        # variants per emotion and split, so test clips are never training clips.
        self.clips = {
            (emotion, split): [self._write_clip(emotion, f"{split}{v}") for v in range(n)]
            for split, n in CLIP_VARIANTS.items()
            for emotion in EMOTION_LOOKS
        }

    def records(self, task: str, split: str, n: int) -> list[dict]:
        """``n`` records of ``task``; ValueError for a task the demo has no media signal for."""
        if task == "ecpe":  # whole dialogues, one record per emotional utterance
            return self._ecpe_records(split, n)
        looks = {"msa": self._msa, "fer": self._fer, "mer": self._mer, "erc": self._erc, "eri": self._eri}
        if task not in looks:
            raise ValueError(
                f"the demo has no data for task {task!r} (it makes {', '.join([*looks, 'ecpe'])})"
            )
        records = []
        for _ in range(n):
            query = TASKS[task].query(self._utterance())
            answer, media = looks[task](split)
            records.append({"query": query, "response": TASKS[task].format(answer), **media})
        return records

    # One record's answer and media per task: only the media tell the answer.
    def _msa(self, split: str) -> tuple:
        answer = self.rng.choice(TASKS["msa"].labels)
        return answer, self._image(_sentiment_image(answer == "Positive", self.rng), "msa", split)

    def _fer(self, split: str) -> tuple:
        eyes, mouth = self.rng.choice(list(EYES)), self.rng.choice(list(MOUTHS))
        answer = [phrase for phrase in (EYES[eyes], MOUTHS[mouth]) if phrase]
        return answer, self._image(_face(eyes, mouth, self.rng), "fer", split)

    def _mer(self, split: str) -> tuple:
        answer = self.rng.choice(TASKS["mer"].labels)
        return answer, self._image(_emotion_frame(emotion_of(answer), _variant(self.rng)), "mer", split)

    def _erc(self, split: str) -> tuple:
        answer = self.rng.choice(TASKS["erc"].labels)
        return answer, self._clip(emotion_of(answer), split)

    def _eri(self, split: str) -> tuple:  # MOSEI emotions, explained
        emotion = emotion_of(self.rng.choice(TASKS["mer"].labels))
        colour, _, shape, motion, feeling = EMOTION_LOOKS[emotion]
        answer = self.rng.choice(_REASONS).format(feeling=feeling, colour=colour, shape=shape, motion=motion)
        return answer, self._clip(emotion, split)

    def _ecpe_records(self, split: str, n: int) -> list[dict]:
        emotional = [e for e in ECPE_EMOTIONS if e != "neutral"]
        records: list[dict] = []
        while len(records) < n:
            conversation = [
                Utterance(
                    self.rng.choice(SPEAKERS),
                    self._utterance(),
                    "neutral" if self.rng.random() < 0.35 else self.rng.choice(emotional),
                )
                for _ in range(self.rng.randint(4, 8))
            ]
            # One record per non-neutral utterance, its clip the target's, as in ECF 2.0's release.
            for t, utterance in enumerate(conversation, start=1):
                if utterance.emotion != "neutral":
                    pairs = [(t, utterance.emotion, c) for c in ecpe_causes(conversation, t)]
                    query, response = ecpe_query(conversation, t), TASKS["ecpe"].format(pairs)
                    records.append(
                        {"query": query, "response": response, **self._clip(utterance.emotion, split)}
                    )
        return records[:n]

    def _utterance(self) -> str:
        return " ".join(self.rng.choice(words) for words in _FILLER) + "."

    def _clip(self, emotion: str, split: str) -> dict:
        return {"videos": [self.rng.choice(self.clips[emotion, split])]}

    def _image(self, image: Image.Image, task: str, split: str) -> dict:
        self.images[task, split] += 1
        relative = f"media/images/{task}_{split}_{self.images[task, split]:04d}.png"
        image.save(self.out / relative)
        return {"images": [relative]}

    def _write_clip(self, emotion: str, name: str) -> str:
        variant, relative = _variant(self.rng), f"media/clips/{emotion}_{name}.mp4"
        times = [k / (CLIP_FRAMES - 1) for k in range(CLIP_FRAMES)]
        frames = [np.asarray(_emotion_frame(emotion, variant, t, k)) for k, t in enumerate(times)]
        write_clip(self.out / relative, np.stack(frames))
        return relative


def write_clip(path: str | Path, frames: np.ndarray, fps: int = FPS, audio: np.ndarray | None = None) -> None:
    """Encode uint8 (N, H, W, 3) RGB frames (H, W even) as a reproducible H.264 mp4, with ``audio``
    (float mono samples in [-1, 1] at ``AUDIO_RATE``) as an AAC track when given."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        # One encoder thread makes the bitstream, and so the decoded pixels, reproducible.
        stream.codec_context.options = {"threads": "1", "preset": "veryfast", "crf": "18"}
        sound = None  # every stream must exist before the first packet is muxed
        if audio is not None:
            sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
            sound.bit_rate = 32_000  # a pure tone needs little; keeps the demo small
            sound.codec_context.options = {"aac_coder": "fast"}  # 3x faster than the default coder
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
        if sound is not None:
            samples = audio.astype(np.float32)
            for start in range(0, len(samples), 1024):  # AAC's frame size
                chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], "fltp", "mono")
                chunk.sample_rate, chunk.pts = AUDIO_RATE, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())


class _ToneBuilder:
    """mer2023 records whose label only the clip's sound carries."""

    def __init__(self, out: Path, rng: random.Random) -> None:
        self.out, self.rng = out, rng
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 6, (SIZE, SIZE, 1))
        grey = np.clip(128 + noise, 0, 255).astype(np.uint8)
        # One static grey picture for every label, split and clip: the frames say nothing.
        self.frames = np.ascontiguousarray(np.broadcast_to(grey, (CLIP_FRAMES, SIZE, SIZE, 3)))
        self.clips = {
            (label, split): [self._write_clip(label, f"{split}{v}") for v in range(n)]
            for split, n in AUDIO_CLIP_VARIANTS.items()
            for label in MER2023_PITCHES
        }

    def records(self, split: str, n: int) -> list[dict]:
        task, records = TASKS["mer2023"], []
        for _ in range(n):
            label = self.rng.choice(task.labels)
            # The template adds the full stop after the subtitle.
            subtitle = " ".join(self.rng.choice(words) for words in _FILLER)
            clip = self.rng.choice(self.clips[label, split])
            records.append({"query": task.query(subtitle), "response": label, "videos": [clip]})
        return records

    def _write_clip(self, label: str, name: str) -> str:
        relative = f"media/clips/mer2023_{label}_{name}.mp4"
        write_clip(self.out / relative, self.frames, audio=self._tone(MER2023_PITCHES[label]))
        return relative

    def _tone(self, pitch: float) -> np.ndarray:
        """A jittered sine at ``pitch`` over the clip's length, faded in and out, with faint noise."""
        t = np.arange(CLIP_FRAMES * AUDIO_RATE // FPS) / AUDIO_RATE
        hz = pitch * self.rng.uniform(0.97, 1.03)
        volume, phase = self.rng.uniform(0.3, 0.6), self.rng.uniform(0, 2 * math.pi)
        fade = np.minimum(1, np.minimum(t, t[-1] - t) / 0.02)
        noise = np.random.default_rng(self.rng.randrange(2**32)).normal(0, 0.01, len(t))
        return volume * fade * np.sin(2 * math.pi * hz * t + phase) + noise


def _variant(rng: random.Random) -> dict:
    """One picture of an emotion: background shade, position, size and tint jitter."""
    jitter = (rng.uniform(-6, 6), rng.uniform(-6, 6), rng.uniform(15, 20), rng.randint(-20, 20))
    return {"background": rng.randint(15, 70), "jitter": jitter}


def _emotion_frame(emotion: str, variant: dict, t: float = 0.5, k: int = 0) -> Image.Image:
    """The emotion's shape at time ``t`` in [0, 1] of its motion (frame ``k``)."""
    _, rgb, shape, motion, _ = EMOTION_LOOKS[emotion]
    dx, dy, r, tint = variant["jitter"]
    x, y = SIZE / 2 + dx, SIZE / 2 + dy
    if motion == "shakes":
        x += 6 * math.sin(2.5 * k)  # irregular, so any 8 sampled frames still jump about
    elif motion == "recoils to the left":
        x += 10 - 20 * t
    elif motion == "bounces":
        y -= 10 * abs(math.sin(2 * math.pi * t))
    elif motion == "sinks":
        y += 20 * t - 10
    elif motion in ("grows", "shrinks"):
        r *= 0.6 + 0.8 * (t if motion == "grows" else 1 - t)
    image = Image.new("RGB", (SIZE, SIZE), (variant["background"],) * 3)
    _draw_shape(ImageDraw.Draw(image), shape, x, y, r, tuple(min(255, max(0, c + tint)) for c in rgb))
    return image


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float, fill: tuple) -> None:
    if shape in _POLYGONS:
        draw.polygon([(x + r * u, y + r * v) for u, v in _POLYGONS[shape]], fill=fill)
    elif shape == "ring":
        draw.ellipse((x - r, y - r, x + r, y + r), outline=fill, width=max(3, round(r / 2.5)))
    else:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _sentiment_image(positive: bool, rng: random.Random) -> Image.Image:
    """A warm (red to yellow) or cold (cyan to blue) field with a few small grey distractors."""
    hue = rng.uniform(-0.03, 0.14) % 1 if positive else rng.uniform(0.5, 0.68)
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.6, 0.95))
    image = Image.new("RGB", (SIZE, SIZE), tuple(round(255 * c) for c in rgb))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 3)):
        x, y, r = rng.uniform(8, SIZE - 8), rng.uniform(8, SIZE - 8), rng.uniform(3, 8)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.choice((0, 128, 255)),) * 3)
    return image


def _face(eyes: str, mouth: str, rng: random.Random) -> Image.Image:
    """A face filling the picture, little jitter: features must survive a 56-px downscale."""
    image = Image.new("RGB", (SIZE, SIZE), (rng.randint(25, 60),) * 3)
    draw, x, y = ImageDraw.Draw(image), SIZE / 2 + rng.uniform(-1.5, 1.5), SIZE / 2 + rng.uniform(-1.5, 1.5)
    skin = tuple(c + rng.randint(-10, 10) for c in (230, 190, 130))
    draw.ellipse((x - 30, y - 30, x + 30, y + 30), fill=skin)
    for ex, ey in ((x - 12, y - 10), (x + 12, y - 10)):
        if eyes == "wide":
            draw.ellipse((ex - 8, ey - 8, ex + 8, ey + 8), fill=(255, 255, 255))
            draw.ellipse((ex - 3, ey - 3, ex + 3, ey + 3), fill=(0, 0, 0))
        elif eyes == "narrow":
            draw.rectangle((ex - 8, ey - 1, ex + 8, ey + 1), fill=(0, 0, 0))
        else:
            draw.ellipse((ex - 4, ey - 4, ex + 4, ey + 4), fill=(0, 0, 0))
    my = y + 12
    if mouth == "smile":
        draw.arc((x - 16, my - 14, x + 16, my + 8), 15, 165, fill=(0, 0, 0), width=5)
    elif mouth == "frown":
        draw.arc((x - 16, my - 2, x + 16, my + 20), 195, 345, fill=(0, 0, 0), width=5)
    elif mouth == "open":
        draw.ellipse((x - 8, my - 8, x + 8, my + 10), fill=(90, 20, 20))
    else:
        draw.rectangle((x - 14, my - 2, x + 14, my + 3), fill=(0, 0, 0))
    return image


def _write_json(path: Path, records: list[dict]) -> None:
    path.write_text(dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def summarize(out_dir: str | Path) -> str:
    """Records per file and task, and the folder's total size."""
    out, lines = Path(out_dir), []
    for path in sorted(out.rglob("*.json")):
        tasks = Counter(
            infer_task(record["query"]) for record in json.loads(path.read_text(encoding="utf-8"))
        )
        detail = ", ".join(f"{task} {n}" for task, n in sorted(tasks.items(), key=lambda kv: str(kv[0])))
        lines.append(f"{path.relative_to(out)}: {sum(tasks.values())} records ({detail})")
    files = [f for f in out.rglob("*") if f.is_file()]
    lines.append(f"{len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.2f} MB in {out}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-size", type=int, default=40, help="records per task in test/<task>.json")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    write_demo_dataset(args.out, args.seed, args.test_size)
    print(summarize(args.out))
    print(f"written in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()

"""The demo dataset: a small synthetic EmoVerse, in EmoVerse's own file format, that a tiny model can learn.

    python -m m2se.data.demo --out data/demo [--seed 0]

Writes ``first_stage.json`` (msa, mer, fer), ``second_stage.json`` (msa, eri, erc, ecpe),
``audio_stage.json`` (mer2023) and ``test/<task>.json``: ms-swift query/response lists, media paths
relative to the output folder, 64-px PNGs under ``media/images`` and 16-frame lossless H.264 clips
under ``media/clips``. Utterances are bland filler that never names a label, so only the media tell
the answer:
- msa: the image's dominant colour, warm (Positive) or cold (Negative);
- mer, erc, eri: the emotion's big saturated shape (``EMOTION_LOOKS``), moving in clips; eri's reason
  is one sentence naming the person's state and what the clip shows;
- fer: a drawn face whose eyes and mouth pick the phrases (``EYES``, ``MOUTHS``);
- ecpe: dialogues of 3 to 6 utterances whose causes follow ``ecpe_causes`` from the target's emotion,
  so an answer needs the target's index read from the prompt and the rule;
- mer2023: only the sound: the clips (``mer2023_*.mp4``) show the same grey picture for every label
  and carry a 16 kHz mono AAC tone whose pitch is the label's (``MER2023_PITCHES``).
Test records use their own images and clips. Same seed, same files; the mer2023 part has its own
random stream, so the other files are what they were before it existed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from m2se.data.demo_media import (
    AUDIO_RATE,
    EMOTION_LOOKS,
    EYES,
    FPS,
    MOUTHS,
    SIZE,
    emotion_frame,
    face,
    sentiment_image,
    variant,
    write_clip,
)
from m2se.files import dumps
from m2se.tasks import ECPE_EMOTIONS, TASKS, infer_task
from m2se.templates import Utterance, ecpe_query

# ecpe's many records cost only text (their clips are shared): with 120 the tiny model memorised the
# dialogues instead of learning to read the target's index.
TRAIN_SIZES = {
    "first_stage": {"msa": 200, "mer": 150, "fer": 200},
    "second_stage": {"msa": 50, "eri": 120, "erc": 200, "ecpe": 1200},
}
TEST_TASKS = ("msa", "mer", "erc", "fer", "eri", "ecpe")
CLIP_FRAMES, CLIP_VARIANTS = 16, {"train": 6, "test": 2}
AUDIO_TRAIN_SIZE, AUDIO_CLIP_VARIANTS = 240, {"train": 4, "test": 2}
# One tone per MER2023 label, half an octave apart (220 Hz * 2^(i/2)); per-clip jitter stays within 3%.
MER2023_PITCHES = {label: 220 * 2 ** (i / 2) for i, label in enumerate(TASKS["mer2023"].labels)}

SPEAKERS = ("Alex", "Sam", "Jordan", "Riley", "Casey")
_FILLER = (
    ("I", "We", "My cousin", "The neighbour", "Our team", "She", "He", "They"),
    ("moved", "carried", "counted", "checked", "ordered", "parked", "fixed", "found", "sorted", "labelled"),
    ("the boxes", "a chair", "the folder", "two tickets", "the car", "some bread", "the printer", "a lamp"),
    ("on Tuesday", "after lunch", "this morning", "last week", "before the meeting", "at noon", "again"),
)
# One sentence per emotion, naming what the clip shows: the words that differ are the ones a model
# must see, so a constant answer (eri's baseline) scores only the shared frame of the sentence.
_REASON = "The person is {state}: a {colour} {shape} {motion} in the video."


def emotion_of(label: str) -> str:
    """The ECPE emotion name of an mer/erc label (``Happy`` and ``Joy`` are both joy)."""
    return {"happy": "joy"}.get(label.lower(), label.lower())


# The demo's cause rule: which utterance, relative to the 1-based target, caused its emotion.
ECPE_CAUSE_OFFSETS = {
    "joy": (0,),
    "anger": (0,),
    "sadness": (0,),
    "surprise": (1,),
    "fear": (1,),
    "disgust": (),
}


def ecpe_causes(conversation: list[Utterance], target: int) -> list[int]:
    """The demo's causes of the 1-based ``target``, from its emotion alone (``ECPE_CAUSE_OFFSETS``): joy,
    anger and sadness are caused by the target itself, surprise and fear by the utterance before it
    (the first utterance has none), disgust by none."""
    offsets = ECPE_CAUSE_OFFSETS[conversation[target - 1].emotion]
    return [target - k for k in offsets if target - k >= 1]


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
        return answer, self._image(sentiment_image(answer == "Positive", self.rng), "msa", split)

    def _fer(self, split: str) -> tuple:
        eyes, mouth = self.rng.choice(list(EYES)), self.rng.choice(list(MOUTHS))
        answer = [phrase for phrase in (EYES[eyes], MOUTHS[mouth]) if phrase]
        return answer, self._image(face(eyes, mouth, self.rng), "fer", split)

    def _mer(self, split: str) -> tuple:
        answer = self.rng.choice(TASKS["mer"].labels)
        return answer, self._image(emotion_frame(emotion_of(answer), variant(self.rng)), "mer", split)

    def _erc(self, split: str) -> tuple:
        answer = self.rng.choice(TASKS["erc"].labels)
        return answer, self._clip(emotion_of(answer), split)

    def _eri(self, split: str) -> tuple:  # MOSEI emotions, explained
        emotion = emotion_of(self.rng.choice(TASKS["mer"].labels))
        colour, _, shape, motion, state = EMOTION_LOOKS[emotion]
        answer = _REASON.format(state=state, colour=colour, shape=shape, motion=motion)
        return answer, self._clip(emotion, split)

    def _ecpe_records(self, split: str, n: int) -> list[dict]:
        emotional = [e for e in ECPE_EMOTIONS if e != "neutral"]
        records: list[dict] = []
        while len(records) < n:
            # ECF's conversation numbers, so the demo's ecpe scores also go out per conversation.
            conversation_id = records[-1]["conversation_ID"] + 1 if records else 1
            conversation = [
                Utterance(
                    self.rng.choice(SPEAKERS),
                    self._utterance(),
                    "neutral" if self.rng.random() < 0.35 else self.rng.choice(emotional),
                )
                for _ in range(self.rng.randint(3, 6))
            ]
            # One record per non-neutral utterance, its clip the target's, as in ECF 2.0's release.
            for t, utterance in enumerate(conversation, start=1):
                if utterance.emotion != "neutral":
                    pairs = [(t, utterance.emotion, c) for c in ecpe_causes(conversation, t)]
                    query, response = ecpe_query(conversation, t), TASKS["ecpe"].format(pairs)
                    clip = self._clip(utterance.emotion, split)
                    records.append(
                        {"query": query, "response": response, **clip, "conversation_ID": conversation_id}
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
        look, relative = variant(self.rng), f"media/clips/{emotion}_{name}.mp4"
        times = [k / (CLIP_FRAMES - 1) for k in range(CLIP_FRAMES)]
        frames = [np.asarray(emotion_frame(emotion, look, t, k)) for k, t in enumerate(times)]
        write_clip(self.out / relative, np.stack(frames))
        return relative


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

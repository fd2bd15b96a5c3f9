"""The demo's pictures and clips: emotion shapes that move, warm and cold fields, drawn faces, H.264
clips with an optional AAC tone. Deterministic for a given random stream (``m2se.data.demo``)."""

from __future__ import annotations

import colorsys
import math
import random
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

SIZE, FPS, AUDIO_RATE = 64, 8, 16_000

# ECPE emotion name -> colour name, RGB, shape, motion, and how eri's reasons name the person's state.
# Hues stay far apart after the 56-px downscale of a tiny model.
EMOTION_LOOKS = {
    "anger": ("red", (220, 40, 40), "square", "shakes", "angry"),
    "disgust": ("green", (50, 165, 50), "cross", "recoils to the left", "disgusted"),
    "fear": ("magenta", (195, 50, 195), "diamond", "shrinks", "afraid"),
    "joy": ("yellow", (240, 210, 40), "circle", "bounces", "happy"),
    "neutral": ("grey", (150, 150, 150), "bar", "stays still", "calm"),
    "sadness": ("blue", (40, 70, 210), "falling triangle", "sinks", "sad"),
    "surprise": ("cyan", (40, 205, 215), "ring", "grows", "surprised"),
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


def write_clip(path: str | Path, frames: np.ndarray, fps: int = FPS, audio: np.ndarray | None = None) -> None:
    """Encode uint8 (N, H, W, 3) RGB frames (H, W even) as a reproducible H.264 mp4, with ``audio``
    (float mono samples in [-1, 1] at ``AUDIO_RATE``) as an AAC track when given."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        # Lossless (qp 0) and one thread make the bitstream, and so the decoded pixels, reproducible:
        # with crf 18 about one encode in four gave other pixels, even on one thread.
        stream.codec_context.thread_count = 1
        stream.codec_context.options = {"preset": "veryfast", "qp": "0"}
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


def variant(rng: random.Random) -> dict:
    """One picture of an emotion: background shade, position, size and tint jitter."""
    jitter = (rng.uniform(-6, 6), rng.uniform(-6, 6), rng.uniform(15, 20), rng.randint(-20, 20))
    return {"background": rng.randint(15, 70), "jitter": jitter}


def emotion_frame(emotion: str, variant: dict, t: float = 0.5, k: int = 0) -> Image.Image:
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


def sentiment_image(positive: bool, rng: random.Random) -> Image.Image:
    """A warm (red to yellow) or cold (cyan to blue) field with a few small grey distractors."""
    hue = rng.uniform(-0.03, 0.14) % 1 if positive else rng.uniform(0.5, 0.68)
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.6, 0.95))
    image = Image.new("RGB", (SIZE, SIZE), tuple(round(255 * c) for c in rgb))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 3)):
        x, y, r = rng.uniform(8, SIZE - 8), rng.uniform(8, SIZE - 8), rng.uniform(3, 8)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.choice((0, 128, 255)),) * 3)
    return image


def face(eyes: str, mouth: str, rng: random.Random) -> Image.Image:
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

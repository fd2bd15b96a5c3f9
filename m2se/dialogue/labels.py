"""Emotion label sets of the ERC corpora and InstructERC's unified nine labels (docs/PROTOCOL.md §3).

``NATIVE`` lists each corpus's labels in InstructERC's order and spelling: the order of the label list in
its prompts. ``UNIFIED`` maps each native label to one of the nine Feeling Wheel labels; per corpus the
map is one to one, so a unified answer maps back to exactly one native label (``to_native``).
"""

from __future__ import annotations

NATIVE: dict[str, tuple[str, ...]] = {
    "iemocap": ("happy", "sad", "neutral", "angry", "excited", "frustrated"),
    "meld": ("neutral", "surprise", "fear", "sad", "joyful", "disgust", "angry"),
    "emorynlp": ("Joyful", "Mad", "Peaceful", "Neutral", "Sad", "Powerful", "Scared"),
}

UNIFIED_LABELS = ("joyful", "sad", "neutral", "mad", "excited", "powerful", "fear", "peaceful", "disgust")

UNIFIED: dict[str, dict[str, str]] = {
    "iemocap": {
        "happy": "joyful",
        "sad": "sad",
        "neutral": "neutral",
        "angry": "mad",
        "excited": "excited",
        "frustrated": "fear",
    },
    "meld": {
        "neutral": "neutral",
        "surprise": "powerful",
        "fear": "fear",
        "sad": "sad",
        "joyful": "joyful",
        "disgust": "disgust",
        "angry": "mad",
    },
    "emorynlp": {
        "Joyful": "joyful",
        "Mad": "mad",
        "Peaceful": "peaceful",
        "Neutral": "neutral",
        "Sad": "sad",
        "Powerful": "powerful",
        "Scared": "fear",
    },
}

# Speaker slots InstructERC offers in its speaker-identification prompt.
SPEAKER_SLOTS = {"iemocap": 2}
DEFAULT_SPEAKER_SLOTS = 9


def native_labels(dataset: str) -> tuple[str, ...]:
    try:
        return NATIVE[dataset]
    except KeyError:
        raise ValueError(f"unknown ERC dataset {dataset!r} (known: {', '.join(NATIVE)})") from None


def unified_labels(dataset: str) -> tuple[str, ...]:
    """The unified labels a corpus uses, in its native order (its prompts list these with unified labels)."""
    return tuple(UNIFIED[dataset][label] for label in native_labels(dataset))


def to_unified(dataset: str, label: str) -> str:
    native_labels(dataset)
    try:
        return UNIFIED[dataset][label]
    except KeyError:
        raise ValueError(
            f"{label!r} is not a {dataset} label (expected one of {', '.join(NATIVE[dataset])})"
        ) from None


def to_native(dataset: str, unified: str) -> str | None:
    """The corpus's own label for a unified one; None when the corpus has no label that maps there."""
    back = {u: n for n, u in UNIFIED[dataset].items()} if dataset in UNIFIED else {}
    return back.get(unified)


def speaker_slots(dataset: str) -> int:
    return SPEAKER_SLOTS.get(dataset, DEFAULT_SPEAKER_SLOTS)

"""Reading generated answers: normalisation, classification parse modes, ECPE pairs. Never raises.

Parse modes for classification answers (``parse=``), by what they do:

- ``exact`` (default): the whole normalised answer is a label (or an alias): ``Joy.`` and ``joy``
  read as Joy, ``The emotion is joy.`` does not.
- ``contains``: the answer names exactly one label: ``The emotion is joy.`` reads as Joy.
- ``nearest`` (InstructERC's fallback): ``exact``, else the label nearest by edit distance.
- ``emotion_llama`` (reference; ``mer2023``): Emotion-LLaMA's MER2023 scorer literally. The answer is
  split on single spaces and its last piece must equal one of the six labels, case and punctuation
  included; anything else becomes ``neutral`` (so ``happy.``, ``Happy`` and ``happy``
  followed by a newline score as neutral). The gold label's last piece is taken the same way but never replaced.
- ``emoverse`` (reference; ``msa``, ``mer``, ``erc``): EmoVerse's released exact-match rule. The
  answer, stripped of surrounding whitespace, must equal a label as the released files write it
  (``Joy.``: case and final dot included). msa reads any other answer as ``Negative`` (the release's
  no-match rule); mer and erc count it unparseable and wrong (the release crashes on it).

Reference modes apply to the tasks their scorer covered (``Task.reference_modes``); other tasks are
read with ``exact``. ``Task.substituted`` tells when a reference mode put its fallback label in place
of an answer it could not read (counted as ``fallback_answers``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

ParseMode = Literal["exact", "contains", "nearest", "emotion_llama", "emoverse"]
PARSE_MODES = ("exact", "contains", "nearest", "emotion_llama", "emoverse")
REFERENCE_MODES = ("emotion_llama", "emoverse")
# Names used before the modes were named by what they do; refused with a pointer to the new one.
RENAMED_MODES = {
    "strict": "'contains' (what 'strict' did; the default is now 'exact')",
    "last_word": "'emotion_llama' (Emotion-LLaMA's scorer, literally)",
}


def check_parse_mode(mode: str) -> str:
    """``mode`` if it is a parse mode, else ValueError naming the modes (or the renamed one)."""
    if mode in RENAMED_MODES:
        raise ValueError(f"parse mode {mode!r} was renamed: use {RENAMED_MODES[mode]}")
    if mode not in PARSE_MODES:
        raise ValueError(f"unknown parse mode {mode!r} (expected one of {', '.join(PARSE_MODES)})")
    return mode


ECPE_EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed: the form parsers compare."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]|_", " ", folded).split())


def finite_number(value: Any) -> bool:
    """A JSON number a float can hold: not a bool, not NaN/Infinity, not an integer beyond float range."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def integer(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii() and value.isdecimal()
    return isinstance(value, int) and not isinstance(value, bool)


def vocabulary_of(labels: Sequence[str], aliases: dict[str, str]) -> dict[str, str]:
    vocab = {normalize(label): label for label in labels}
    vocab.update({normalize(alias): label for alias, label in aliases.items()})
    return vocab


def nearest_label(text: str, vocabulary: dict[str, str]) -> str | None:
    """The label whose normalised form is nearest to the answer by edit distance (ties: first listed)."""
    answer = normalize(text)
    if not answer or not vocabulary:
        return None
    keys = list(vocabulary)
    distances = [edit_distance(answer, key) for key in keys]
    return vocabulary[keys[distances.index(min(distances))]]


def edit_distance(long: str, short: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions of characters, each costing 1), the
    same as torchmetrics' ``edit_distance``; one row over ``short``, so a long answer against a short
    label costs len(long) × len(short) steps (torchmetrics took 51 s for a 64k-character answer)."""
    row = list(range(len(short) + 1))
    for i, a in enumerate(long, 1):
        previous, row[0] = row[0], i
        for j, b in enumerate(short, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (a != b))
    return row[-1]


def named_label(text: str, vocabulary: dict[str, str]) -> str | None:
    # A sentence like "The emotion is joy." counts when it names exactly one label.
    padded = f" {normalize(text)} "
    found = {label for key, label in vocabulary.items() if f" {key} " in padded}
    return found.pop() if len(found) == 1 else None


# Utterance indices are ASCII digits, at most 9 of them (int() refuses thousands; \d takes any script's).
_PAIR = re.compile(r"(?<![0-9])([0-9]{1,9})\s*_\s*([A-Za-z]+)\s*,\s*([0-9]{1,9})(?![0-9])")


def parse_pairs(text: str, strict: bool = False) -> list[tuple[int, str, int]] | None:
    """ECPE answer → (target, emotion, cause) triples in answer order.

    An empty answer is the valid "no cause" answer ``[]``. Malformed pieces are dropped (or, with
    ``strict``, make the whole answer None); text with no readable piece is None.
    """
    if not isinstance(text, str):
        return None
    if not text.strip():
        return []
    triples = []
    for piece in re.split(r"[;\uff1b\n]", text):
        piece = piece.strip().rstrip(".")
        # Strict (gold answers): the piece is exactly one pair; lenient (generations): a pair inside it.
        match = _PAIR.fullmatch(piece) if strict else _PAIR.search(piece)
        if match is None or match[2].lower() not in ECPE_EMOTIONS:
            if strict and piece:
                return None
            continue
        triples.append((int(match[1]), match[2].lower(), int(match[3])))
    return triples or None

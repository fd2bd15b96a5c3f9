"""What each task is: identifier, instruction, labels, answer parser and formatter.

The six EmoVerse tasks (PROTOCOL.md §2). Queries of every task but ECPE read
``The person says: '<utterance>' <identifier> <instruction>``; ECPE has its own template.
Conversation-level tasks after InstructERC (``erc_dialog``, ``speaker_id``, ``emotion_predict``; their
prompts are built by ``m2se.dialogue.prompts``) and Emotion-LLaMA's ``mer2023`` (PROTOCOL.md §5).
Parsers never raise: an answer they cannot read parses to ``None`` ("no answer").

Parse modes: ``strict`` (default; an answer that names no label, or several, is unparseable),
``nearest`` (InstructERC's fallback: an unreadable answer becomes the label nearest by edit distance),
``last_word`` (Emotion-LLaMA's scorer: the answer's last word, anything outside the labels → the task's
``fallback`` label).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from m2se.templates import (
    DIALOGUE_CONTEXT,
    ECPE_HEAD,
    ECPE_TAIL,
    IERC_PREDICT,
    IERC_SELECT,
    IERC_SPEAKER,
    MER2023_INSTRUCTION,
)

Kind = Literal["classification", "phrases", "text", "pairs"]
ParseMode = Literal["strict", "nearest", "last_word"]
PARSE_MODES = ("strict", "nearest", "last_word")

ECPE_EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed: the form parsers compare."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]|_", " ", folded).split())


@dataclass(frozen=True)
class Task:
    """One task. ``labels`` are the canonical answers of a classification task, without the final dot."""

    name: str
    kind: Kind
    instruction: str
    identifier: str | None = None
    labels: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    max_new_tokens: int = 16
    # The label list is the record's own (``meta["labels"]``, as its prompt lists them): dialogue tasks.
    open_labels: bool = False
    # Records may come without images or videos (text-only ERC).
    needs_media: bool = True
    # Replaces the EmoVerse ``The person says: ...`` query; ``{utterance}`` is filled in.
    template: str | None = None
    # What ``last_word`` parsing answers when the last word is no label (Emotion-LLaMA: neutral).
    fallback: str | None = None

    def query(self, utterance: str, quote: str = "'") -> str:
        """The query for one utterance (not for ECPE: see ``ecpe_query``; dialogue: m2se.dialogue.prompts)."""
        if self.kind == "pairs":
            raise ValueError("ecpe queries are built by ecpe_query(conversation, target)")
        if self.open_labels:
            raise ValueError(f"{self.name} queries are built by m2se.dialogue.prompts")
        if self.template is not None:
            return self.template.format(utterance=utterance)
        head = f"The person says: {quote}{utterance}{quote}"
        return " ".join(p for p in (head, self.identifier, self.instruction) if p)

    def parse(self, text: str, labels: Sequence[str] | None = None, mode: ParseMode = "strict") -> Any:
        """The answer in ``text``, or None when it cannot be read. Never raises.

        ``labels``: the record's label list for an open-label task (without it, such an answer is only
        normalised). ``mode`` applies to classification tasks (see the module docstring).
        """
        if not isinstance(text, str):
            return None
        if self.kind == "classification":
            vocabulary = self._vocabulary if labels is None else _vocabulary(labels, {})
            if self.open_labels and labels is None:
                return normalize(text) or None
            if mode == "last_word":
                words = normalize(text).split()
                return vocabulary.get(words[-1] if words else "", self.fallback)
            found = _parse_label(text, vocabulary)
            if found is None and mode == "nearest":
                found = _nearest(text, vocabulary)
            return found
        if self.kind == "phrases":
            phrases = tuple(p for p in (normalize(piece) for piece in text.split(";")) if p)
            return phrases or None
        if self.kind == "pairs":
            return parse_pairs(text)
        return " ".join(text.split()) or None

    def format(self, answer: Any) -> str:
        """The response string for a parsed answer, as the released files write it."""
        if self.kind == "classification":
            return f"{answer}."
        if self.kind == "phrases":
            return "; ".join(p[:1].upper() + p[1:] for p in answer)
        if self.kind == "pairs":
            return ";".join(f"{t}_{e},{c}" for t, e, c in answer)
        return str(answer)

    def check_response(self, response: str) -> str | None:
        """Why a gold ``response`` is invalid for this task, or None when it is valid."""
        if self.kind == "classification" and self.open_labels:
            if not normalize(response):
                return f"empty response for task {self.name}"
        elif self.kind == "classification":
            if normalize(response) not in self._vocabulary:
                expected = ", ".join(f"'{label}.'" for label in self.labels)
                return f"unknown label {response!r} for task {self.name} (expected one of {expected})"
        elif self.kind == "pairs":
            if response.strip() and parse_pairs(response, strict=True) is None:
                return (
                    f"malformed emotion-cause pairs {response!r} (expected like '3_surprise,1;3_surprise,3')"
                )
        elif not response.strip():
            return f"empty response for task {self.name}"
        return None

    @cached_property
    def _vocabulary(self) -> dict[str, str]:
        return _vocabulary(self.labels, self.aliases)


def _vocabulary(labels: Sequence[str], aliases: dict[str, str]) -> dict[str, str]:
    vocab = {normalize(label): label for label in labels}
    vocab.update({normalize(alias): label for alias, label in aliases.items()})
    return vocab


def _nearest(text: str, vocabulary: dict[str, str]) -> str | None:
    """The label whose normalised form is nearest to the answer by edit distance (ties: first listed)."""
    from torchmetrics.functional.text import edit_distance

    answer = normalize(text)
    if not answer or not vocabulary:
        return None
    keys = list(vocabulary)
    distances = [int(edit_distance([answer], [key])) for key in keys]
    return vocabulary[keys[distances.index(min(distances))]]


def _parse_label(text: str, vocabulary: dict[str, str]) -> str | None:
    norm = normalize(text)
    if norm in vocabulary:
        return vocabulary[norm]
    # A sentence like "The emotion is joy." counts when it names exactly one label.
    padded = f" {norm} "
    found = {label for key, label in vocabulary.items() if f" {key} " in padded}
    return found.pop() if len(found) == 1 else None


_PAIR = re.compile(r"(\d+)\s*_\s*([A-Za-z]+)\s*,\s*(\d+)")


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


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "msa",
            "classification",
            "Please determine which sentiment label in the video represents: positive or negative.",
            "<sentiment>",
            ("Positive", "Negative"),
            max_new_tokens=8,
        ),
        Task(
            "mer",
            "classification",
            "Please determine which emotion label in the video represents: "
            "anger, sad, surprise, disgust, happy, neutral or fear.",
            "<emotion>",
            ("Happy", "Sadness", "Surprise", "Disgust", "Anger", "Fear", "Neutral"),
            {"sad": "Sadness", "angry": "Anger"},
            max_new_tokens=8,
        ),
        Task(
            "erc",
            "classification",
            "Please determine which emotion label in the video represents: "
            "anger, sadness, surprise, disgust, joy, neutral or fear.",
            "<emotion>",
            ("Anger", "Sadness", "Surprise", "Disgust", "Joy", "Neutral", "Fear"),
            {"sad": "Sadness", "angry": "Anger"},
            max_new_tokens=8,
        ),
        # EmoVerse never released the FER identifier; `<expression>` is m2se's choice.
        Task(
            "fer",
            "phrases",
            "Detail the facial expressions used in the image.",
            "<expression>",
            max_new_tokens=48,
        ),
        Task(
            "eri",
            "text",
            "What is the emotional state of the person in the video? Please tell me the reason.",
            "<reason>",
            max_new_tokens=256,
        ),
        Task("ecpe", "pairs", ECPE_TAIL, max_new_tokens=48),
        # InstructERC's tasks (PROTOCOL.md §5): the label list is each record's own.
        Task(
            "erc_dialog", "classification", IERC_SELECT, open_labels=True, needs_media=False, max_new_tokens=8
        ),
        Task(
            "speaker_id",
            "classification",
            IERC_SPEAKER,
            labels=tuple(f"Speaker_{k}" for k in range(9)),
            needs_media=False,
            max_new_tokens=8,
        ),
        Task(
            "emotion_predict",
            "classification",
            IERC_PREDICT,
            open_labels=True,
            needs_media=False,
            max_new_tokens=8,
        ),
        # Emotion-LLaMA's MER2023 recognition prompt (its video/feature placeholders are the processor's).
        Task(
            "mer2023",
            "classification",
            MER2023_INSTRUCTION,
            "[emotion]",
            ("neutral", "angry", "happy", "sad", "worried", "surprise"),
            template="The person in video says: {utterance}.  " + MER2023_INSTRUCTION,
            fallback="neutral",
            max_new_tokens=8,
        ),
    )
}

EMOVERSE_TASKS = ("msa", "mer", "erc", "fer", "eri", "ecpe")


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None


def infer_task(query: str) -> str | None:
    """The task a query belongs to, from the ECPE template, the instruction, then the identifier."""
    if query.startswith(ECPE_HEAD[:60]) and "The emotion-cause indices" in query:
        return "ecpe"
    for name, marker in _DIALOGUE_MARKERS:
        if marker in query:
            return name
    if query.startswith(DIALOGUE_CONTEXT):
        return "erc_dialog"
    by_instruction = [
        t.name for t in TASKS.values() if t.kind != "pairs" and not _templated(t) and t.instruction in query
    ]
    if len(by_instruction) == 1:
        return by_instruction[0]
    by_identifier = [t.name for t in TASKS.values() if t.identifier and t.identifier in query]
    return by_identifier[0] if len(by_identifier) == 1 else None


_DIALOGUE_MARKERS = (
    ("speaker_id", IERC_SPEAKER.split("<")[0]),
    ("emotion_predict", IERC_PREDICT.split("<")[0]),
    ("erc_dialog", IERC_SELECT.split("<")[0]),
)


def _templated(task: Task) -> bool:
    # Instructions with {placeholders} are recognised by their fixed part (_DIALOGUE_MARKERS).
    return "{" in task.instruction

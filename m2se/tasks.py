"""What each task is: identifier, instruction, labels, answer parser and formatter.

The six EmoVerse tasks (PROTOCOL.md §2). Queries of every task but ECPE read
``The person says: '<utterance>' <identifier> <instruction>``; ECPE has its own template.
Parsers never raise: an answer they cannot read parses to ``None`` ("no answer").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

Kind = Literal["classification", "phrases", "text", "pairs"]

ECPE_EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")

ECPE_HEAD = (
    "Below is a conversation containing multiple utterances from different speakers, \n"
    "along with the corresponding emotion label for each utterance. \n"
    "Your task is to identify the indices of the candidate utterances that elicited the emotion "
    "in the target utterance.\n"
)
ECPE_TAIL = (
    'You need to return the answer as, for example, "3_surprise,1", \n'
    "which means that the emotion of surprise in the third sentence is related to the first sentence, \n"
    "and if the emotion is related to more than one sentence, separate the sentences with \u201c;\u201d.\n"
    "The emotion-cause indices of the target utterance are:"
)


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

    def query(self, utterance: str, quote: str = "'") -> str:
        """The EmoVerse query for one utterance (not for ECPE: see ``ecpe_query``)."""
        if self.kind == "pairs":
            raise ValueError("ecpe queries are built by ecpe_query(conversation, target)")
        head = f"The person says: {quote}{utterance}{quote}"
        return " ".join(p for p in (head, self.identifier, self.instruction) if p)

    def parse(self, text: str) -> Any:
        """The answer in ``text``, or None when it cannot be read. Never raises."""
        if not isinstance(text, str):
            return None
        if self.kind == "classification":
            return _parse_label(text, self._vocabulary)
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
        if self.kind == "classification":
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
        vocab = {normalize(label): label for label in self.labels}
        vocab.update({normalize(alias): label for alias, label in self.aliases.items()})
        return vocab


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


@dataclass(frozen=True)
class Utterance:
    speaker: str
    text: str
    emotion: str


def ecpe_query(conversation: Sequence[Utterance], target: int) -> str:
    """The released ECPE query for the 1-based ``target`` utterance (emotions given, candidates before it)."""
    lines = [f"{i}_{u.emotion}. {u.speaker}: {u.text}" for i, u in enumerate(conversation, start=1)]
    return (
        ECPE_HEAD
        + "Input conversation:"
        + "\n".join(lines)
        + "\nCandidate utterances:"
        + "\n".join(lines[: target - 1])
        + "\nTarget utterance:"
        + lines[target - 1]
        + "\n"
        + ECPE_TAIL
    )


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
    )
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None


def infer_task(query: str) -> str | None:
    """The task a query belongs to, from the ECPE template, the instruction, then the identifier."""
    if query.startswith(ECPE_HEAD[:60]) and "The emotion-cause indices" in query:
        return "ecpe"
    by_instruction = [t.name for t in TASKS.values() if t.kind != "pairs" and t.instruction in query]
    if len(by_instruction) == 1:
        return by_instruction[0]
    by_identifier = [t.name for t in TASKS.values() if t.identifier and t.identifier in query]
    return by_identifier[0] if len(by_identifier) == 1 else None

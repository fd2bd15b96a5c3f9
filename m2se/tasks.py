"""What each task is: identifier, instruction, labels, answer parser and formatter.

The six EmoVerse tasks (PROTOCOL.md §2). Queries of every task but ECPE read
``The person says: '<utterance>' <identifier> <instruction>``; ECPE has its own template.
Conversation-level tasks after InstructERC (``erc_dialog``, ``speaker_id``, ``emotion_predict``; their
prompts are built by ``m2se.dialogue.prompts``) and Emotion-LLaMA's ``mer2023`` (PROTOCOL.md §5).
Parsers never raise: an answer they cannot read parses to ``None`` ("no answer").

Answer parsing and the parse modes: ``m2se.parsing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from m2se.dialogue.labels import NATIVE
from m2se.parsing import (
    ECPE_EMOTIONS,
    PARSE_MODES,
    REFERENCE_MODES,
    ParseMode,
    check_parse_mode,
    finite_number,
    integer,
    named_label,
    nearest_label,
    normalize,
    parse_pairs,
    vocabulary_of,
)
from m2se.templates import (
    DIALOGUE_CONTEXT,
    ECPE_HEAD,
    ECPE_TAIL,
    IERC_PREDICT,
    IERC_SELECT,
    IERC_SPEAKER,
    MER2023_INSTRUCTION,
)

__all__ = ["ECPE_EMOTIONS", "PARSE_MODES", "ParseMode", "normalize", "parse_pairs"]

# The most labels an open-label record's prompt may offer (InstructERC's corpora offer 6 to 9).
MAX_OPEN_LABELS = 256

Kind = Literal["classification", "phrases", "text", "pairs"]


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
    # What ``emotion_llama`` parsing answers when the last piece is no label (Emotion-LLaMA: neutral).
    fallback: str | None = None
    # Reference parse modes that reproduce a published scorer of this task (module docstring).
    reference_modes: tuple[str, ...] = ()

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

    def parse(self, text: str, labels: Sequence[str] | None = None, mode: ParseMode = "exact") -> Any:
        """The answer in ``text``, or None when it cannot be read. Never raises.

        ``labels``: the record's label list for an open-label task (without it, such an answer is only
        normalised). ``mode`` applies to classification tasks (see the module docstring); a reference
        mode this task has no scorer for reads as ``exact``.
        """
        if not isinstance(text, str):
            return None
        if self.kind == "classification":
            if self.open_labels and labels is None:
                return normalize(text) or None
            mode = self.parse_mode(mode)
            if mode == "emotion_llama":
                piece = text.split(" ")[-1]
                return piece if piece in self.labels else self.fallback
            if mode == "emoverse":
                found = next((label for label in self.labels if text.strip() == f"{label}."), None)
                return found if found is not None else self.fallback
            vocabulary = self._vocabulary if labels is None else vocabulary_of(labels, {})
            found = vocabulary.get(normalize(text))
            if found is None and mode == "contains":
                found = named_label(text, vocabulary)
            if found is None and mode == "nearest":
                found = nearest_label(text, vocabulary)
            return found
        if self.kind == "phrases":
            phrases = tuple(p for p in (normalize(piece) for piece in text.split(";")) if p)
            return phrases or None
        if self.kind == "pairs":
            return parse_pairs(text)
        return " ".join(text.split()) or None

    def parse_mode(self, mode: str) -> str:
        """The mode this task's answers are read with under ``parse=mode`` (see the module docstring)."""
        check_parse_mode(mode)
        return "exact" if mode in REFERENCE_MODES and mode not in self.reference_modes else mode

    def substituted(self, text: str, mode: str) -> bool:
        """Whether a reference mode answers its fallback label because it could not read ``text``."""
        mode = self.parse_mode(mode)
        if self.kind != "classification" or mode not in REFERENCE_MODES or not isinstance(text, str):
            return False
        if mode == "emotion_llama":
            return text.split(" ")[-1] not in self.labels
        return self.fallback is not None and text.strip() not in {f"{label}." for label in self.labels}

    def gold(self, response: str, mode: str = "exact") -> Any:
        """The gold answer of a record's ``response`` as the parse mode's scorer reads it."""
        if self.parse_mode(mode) == "emotion_llama":  # the scorer splits the target the same way
            return response.split(" ")[-1]
        return self.parse(response)

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

    def check_meta(self, meta: dict) -> str | None:
        """Why a record's metadata cannot be scored, or None.

        ``score`` (msa's source score, for Acc-2) must be a finite number and ``conversation_ID``
        (ECPE's SemEval export) an integer; an open-label task's record needs ``dataset``, ``labels``
        (the label list its prompt offers) and ``native`` (its gold label in the corpus's own labels).
        """
        score = meta.get("score")
        if score is not None and not finite_number(score):
            return f"'score' must be a finite number, got {score!r}"
        conversation = meta.get("conversation_ID")
        if conversation is not None and not integer(conversation):
            return f"'conversation_ID' must be an integer, got {conversation!r}"
        if not self.open_labels:
            return None
        dataset, labels, native = meta.get("dataset"), meta.get("labels"), meta.get("native")
        if not isinstance(dataset, str) or not dataset:
            return f"{self.name} records need a 'dataset' name (as python -m m2se.data.build dialogue writes)"
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
            return f"'labels' must be the prompt's non-empty list of label strings, got {labels!r}"[:300]
        if len(labels) > MAX_OPEN_LABELS:  # scores keep a labels × labels confusion matrix per corpus
            return f"'labels' lists {len(labels)} labels (at most {MAX_OPEN_LABELS})"
        expected = NATIVE.get(dataset, tuple(labels))
        if native not in expected:
            return f"'native' gold label {native!r} is not one of {dataset}'s labels ({', '.join(expected)})"
        return None

    @cached_property
    def _vocabulary(self) -> dict[str, str]:
        return vocabulary_of(self.labels, self.aliases)


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
            fallback="Negative",  # EmoVerse's released scorer reads any unmatched answer as Negative
            reference_modes=("emoverse",),
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
            reference_modes=("emoverse",),
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
            reference_modes=("emoverse",),
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
            reference_modes=("emotion_llama",),
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

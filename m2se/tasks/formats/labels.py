"""Label answers: a closed label set (``Labels``) or each record's own list (``OpenLabels``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from m2se.dialogue.labels import NATIVE
from m2se.parsing import REFERENCE_MODES, named_label, nearest_label, normalize, vocabulary_of
from m2se.tasks.baselines import majority
from m2se.tasks.formats.base import AnswerFormat
from m2se.tasks.prediction import Prediction
from m2se.tasks.scorers import DialogueMetrics, LabelMetrics, Scorer

# The most labels an open-label record's prompt may offer (InstructERC's corpora offer 6 to 9).
MAX_OPEN_LABELS = 256


def check_label_set(
    labels: Sequence[str], aliases: dict[str, str], fallback: str | None, reference_modes: Sequence[str]
) -> None:
    """ValueError unless ``labels`` is a tuple or list of at least two strings that stay distinct and
    non-empty once normalised (case, punctuation: the parser compares them so), ``aliases`` map to
    labels, ``fallback`` is a label and ``reference_modes`` are reference parse modes."""
    if not isinstance(labels, tuple | list) or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"labels must be a tuple of strings, got {labels!r}"[:200])
    if len(labels) < 2:
        raise ValueError(f"labels: a label set needs at least two labels, got {list(labels)}")
    seen: dict[str, str] = {}
    for label in labels:
        key = normalize(label)
        if not key:
            raise ValueError(f"labels: {label!r} is empty once normalised (answers could not name it)")
        if key in seen:
            raise ValueError(f"labels: {seen[key]!r} and {label!r} read the same once normalised")
        seen[key] = label
    unknown = sorted(v for v in aliases.values() if v not in labels)
    if unknown:
        raise ValueError(f"aliases point to {unknown}, which are not labels ({', '.join(labels)})")
    if fallback is not None and fallback not in labels:
        raise ValueError(f"fallback {fallback!r} is not one of the labels ({', '.join(labels)})")
    wrong = sorted(set(reference_modes) - set(REFERENCE_MODES))
    if wrong:
        raise ValueError(
            f"reference_modes {wrong} are not reference parse modes ({', '.join(REFERENCE_MODES)})"
        )


@dataclass(frozen=True)
class Labels(AnswerFormat):
    """One label of a closed set, written ``Label.``; ``aliases`` map other words to labels.

    ``fallback``: what a reference parse mode answers when it cannot read an answer (EmoVerse's msa
    scorer reads any unmatched answer as Negative; Emotion-LLaMA's as neutral). ``reference_modes``:
    the reference parse modes that reproduce a published scorer of this task.
    """

    labels: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    fallback: str | None = None
    reference_modes: tuple[str, ...] = ()

    kind: ClassVar[str] = "classification"

    def __post_init__(self) -> None:
        """ValueError for a label set answers could not be told apart in (see ``check_label_set``)."""
        if not self.open_labels:
            check_label_set(self.labels, self.aliases, self.fallback, self.reference_modes)

    reads_parse_modes: ClassVar[bool] = True
    bad_response: ClassVar[str] = "unknown label"
    headline: ClassVar[tuple[str, ...]] = ("accuracy", "f1_weighted")
    baselines: ClassVar[tuple[str, ...]] = ("majority",)

    def parse(self, text: str, labels: Sequence[str] | None = None, mode: str = "exact") -> str | None:
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

    def format(self, answer: Any) -> str:
        return f"{answer}."

    def check_response(self, task: str, response: str) -> str | None:
        if normalize(response) in self._vocabulary:
            return None
        expected = ", ".join(f"'{label}.'" for label in self.labels)
        return f"unknown label {response!r} for task {task} (expected one of {expected})"

    def gold(self, response: str, mode: str) -> Any:
        if mode == "emotion_llama":  # the scorer splits the target the same way, never replacing it
            return response.split(" ")[-1]
        return self.parse(response)

    def gold_problem(self, task: str, response: str, mode: str) -> str | None:
        if self.gold(response, mode) in self.labels:
            return None
        return f"gold label {response!r} is not one of {task}'s labels ({', '.join(self.labels)}) as parse={mode} reads it"

    def substituted(self, text: str, mode: str) -> bool:
        if mode not in REFERENCE_MODES or not isinstance(text, str):
            return False
        if mode == "emotion_llama":
            return text.split(" ")[-1] not in self.labels
        return self.fallback is not None and text.strip() not in {f"{label}." for label in self.labels}

    def metrics(self) -> tuple[Scorer, ...]:
        return (LabelMetrics(),)

    def baseline(self, name: str, rows: Sequence[Prediction], mode: str = "exact") -> list[str]:
        """``majority``: the most common gold label (ties: label order), written as the file writes it
        when the parse ``mode`` reads that as the label, else as the released files write it."""
        if name != "majority":
            return super().baseline(name, rows, mode)

        def read(answer: str) -> str | None:  # an answer, as the run's parse mode reads it
            return self.parse(answer, None, mode)

        return majority([r.label for r in rows], self.parse, self.labels, read, self.format)

    @cached_property
    def _vocabulary(self) -> dict[str, str]:
        return vocabulary_of(self.labels, self.aliases)


@dataclass(frozen=True)
class OpenLabels(Labels):
    """A label of the record's own list (``meta["labels"]``, as its prompt offers them); the gold is
    also kept in the corpus's native labels (``meta["native"]``). Scored per corpus (``meta["dataset"]``)."""

    own_queries: ClassVar[str | None] = "m2se.dialogue.prompts"
    open_labels: ClassVar[bool] = True

    def parse(self, text: str, labels: Sequence[str] | None = None, mode: str = "exact") -> str | None:
        if labels is None:  # without the record's labels an answer is only normalised
            return normalize(text) or None
        return super().parse(text, labels, mode)

    def check_response(self, task: str, response: str) -> str | None:
        return None if normalize(response) else f"empty response for task {task}"

    def gold_problem(self, task: str, response: str, mode: str) -> str | None:
        return None

    def record_labels(self, meta: dict | None) -> Sequence[str] | None:
        return (meta or {}).get("labels")

    def check_meta(self, task: str, meta: dict) -> str | None:
        """A record needs ``dataset``, ``labels`` (the label list its prompt offers, at most
        ``MAX_OPEN_LABELS``) and ``native`` (its gold label in the corpus's own labels)."""
        dataset, labels, native = meta.get("dataset"), meta.get("labels"), meta.get("native")
        if not isinstance(dataset, str) or not dataset:
            return f"{task} records need a 'dataset' name (as python -m m2se.sources dialogue writes)"
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
            return f"'labels' must be the prompt's non-empty list of label strings, got {labels!r}"[:300]
        if len(labels) > MAX_OPEN_LABELS:  # scores keep a labels × labels confusion matrix per corpus
            return f"'labels' lists {len(labels)} labels (at most {MAX_OPEN_LABELS})"
        keys = [normalize(label) for label in labels]
        if not all(keys) or len(set(keys)) != len(keys):  # answers could not name each one apart
            return f"'labels' {labels!r} are not distinct (or empty) once case and punctuation are ignored"[
                :300
            ]
        expected = NATIVE.get(dataset, tuple(labels))
        if native not in expected:
            return f"'native' gold label {native!r} is not one of {dataset}'s labels ({', '.join(expected)})"
        return None

    def check_batch(self, task: str, meta: Sequence[dict] | None) -> None:
        if meta is None or any(not all(k in (m or {}) for k in ("dataset", "labels")) for m in meta):
            raise ValueError(
                f"{task} records need 'dataset' and 'labels' keys (as python -m m2se.sources dialogue writes)"
            )

    def check_rows(self, rows: Sequence[Prediction]) -> tuple[str, str] | None:
        """A corpus m2se has no native label list for is scored over its first row's labels: every row
        of it must offer the same ones."""
        first: dict[str, list] = {}
        for row in rows:
            dataset, labels = row.meta.get("dataset"), row.meta.get("labels")
            if dataset in NATIVE:
                continue
            expected = first.setdefault(dataset, labels)
            if labels != expected:
                offered = ", ".join(map(str, expected))
                return row.where, f"{dataset} rows offer other labels than its first row ({offered})"
        return None

    def metrics(self) -> tuple[Scorer, ...]:
        return (DialogueMetrics(),)

    def baseline(self, name: str, rows: Sequence[Prediction], mode: str = "exact") -> list[str]:
        """``majority``: labels differ per corpus, so the most common answer (ties: the first seen)."""
        if name != "majority":
            return AnswerFormat.baseline(self, name, rows, mode)
        references = [r.label for r in rows]
        counts = Counter(self.parse(r) for r in references)
        best = max(counts.values(), default=0)
        return (
            [next(r for r in references if counts[self.parse(r)] == best)] * len(references) if rows else []
        )

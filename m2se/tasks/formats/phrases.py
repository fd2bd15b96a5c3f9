"""Phrase answers: FER's ``;``-separated phrases, compared as a set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from m2se.parsing import normalize
from m2se.tasks.baselines import most_frequent_set
from m2se.tasks.formats.base import AnswerFormat
from m2se.tasks.prediction import Prediction
from m2se.tasks.scorers import PhraseMetrics, Scorer


@dataclass(frozen=True)
class Phrases(AnswerFormat):
    """Phrases joined by ``;`` (FER's action-unit descriptions), compared normalised, as a set."""

    kind: ClassVar[str] = "phrases"
    baselines: ClassVar[tuple[str, ...]] = ("majority",)
    headline: ClassVar[tuple[str, ...]] = ("phrase_f1",)

    def parse(
        self, text: str, labels: Sequence[str] | None = None, mode: str = "exact"
    ) -> tuple[str, ...] | None:
        phrases = tuple(p for p in (normalize(piece) for piece in text.split(";")) if p)
        return phrases or None

    def format(self, answer: Any) -> str:
        return "; ".join(p[:1].upper() + p[1:] for p in answer)

    def check_response(self, task: str, response: str) -> str | None:
        """A gold answer needs at least one phrase (``" ; ;"`` holds none, like the empty answer)."""
        if self.parse(response) is None:
            return f"no phrases in the response {response!r} for task {task} (phrases are joined by ';')"
        return None

    def answer_counts(self, response: str) -> list[str]:
        return list(self.parse(response) or ())

    def baseline(self, name: str, rows: Sequence[Prediction], mode: str = "exact") -> list[str]:
        """``majority``: the most frequent gold phrase set (order and case aside) for every record."""
        if name != "majority":
            return super().baseline(name, rows, mode)
        return most_frequent_set([r.label for r in rows], self.parse)

    def metrics(self) -> tuple[Scorer, ...]:
        return (PhraseMetrics(),)

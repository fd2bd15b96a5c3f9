"""Free-text answers: ERI's explanations, compared by word overlap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from m2se.metrics.text import rouge_l
from m2se.tasks.baselines import constant_text
from m2se.tasks.formats.base import AnswerFormat
from m2se.tasks.prediction import Prediction
from m2se.tasks.scorers import Scorer, TextMetrics


@dataclass(frozen=True)
class FreeText(AnswerFormat):
    """Free text (ERI's explanations), compared by word overlap."""

    kind: ClassVar[str] = "text"
    baselines: ClassVar[tuple[str, ...]] = ("constant",)
    headline: ClassVar[tuple[str, ...]] = ("rougeL",)

    def parse(self, text: str, labels: Sequence[str] | None = None, mode: str = "exact") -> str | None:
        return " ".join(text.split()) or None

    def gold(self, response: str, mode: str) -> Any:
        return response

    def identity(self, response: str) -> str:
        return " ".join(response.split())

    def answer_counts(self, response: str) -> list[str]:
        words = len(response.split())
        return [f"{words // 25 * 25}-{words // 25 * 25 + 24} words"]

    def baseline(self, name: str, rows: Sequence[Prediction], mode: str = "exact") -> list[str]:
        """``constant``: one typical gold text for every record (``m2se.tasks.baselines.constant_text``)."""
        if name != "constant":
            return super().baseline(name, rows, mode)
        return constant_text([r.label for r in rows], rouge_l)

    def metrics(self) -> tuple[Scorer, ...]:
        return (TextMetrics(),)

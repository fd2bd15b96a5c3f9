"""Emotion-cause pair answers: ECPE's ``t_emotion,c`` pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from m2se.parsing import parse_pairs
from m2se.tasks.baselines import self_and_previous, self_cause
from m2se.tasks.exports import write_semeval
from m2se.tasks.formats.base import AnswerFormat
from m2se.tasks.prediction import Prediction
from m2se.tasks.scorers import PairMetrics, Scorer


@dataclass(frozen=True)
class CausePairs(AnswerFormat):
    """Emotion-cause pairs ``t_emotion,c`` joined by ``;`` (ECPE); the empty answer means "no cause"."""

    kind: ClassVar[str] = "pairs"
    uses_protocol: ClassVar[bool] = True
    own_queries: ClassVar[str | None] = "ecpe_query(conversation, target)"
    baselines: ClassVar[tuple[str, ...]] = ("self_cause", "self_previous")
    headline: ClassVar[tuple[str, ...]] = ("pair_f1",)

    def parse(self, text: str, labels: Sequence[str] | None = None, mode: str = "exact") -> Any:
        return parse_pairs(text)

    def format(self, answer: Any) -> str:
        return ";".join(f"{t}_{e},{c}" for t, e, c in answer)

    def check_response(self, task: str, response: str) -> str | None:
        if response.strip() and parse_pairs(response, strict=True) is None:
            return f"malformed emotion-cause pairs {response!r} (expected like '3_surprise,1;3_surprise,3')"
        return None

    def answer_counts(self, response: str) -> list[str]:
        triples = self.parse(response) or []
        return [
            "no cause" if not triples else "with cause",
            *(f"pair:{emotion}" for _, emotion, _ in triples),
        ]

    def metrics(self) -> tuple[Scorer, ...]:
        return (PairMetrics(),)

    def write_outputs(self, task: str, rows: Sequence[Prediction], out_dir: Path) -> list[str]:
        """``<task>_semeval.json``: the predictions as a SemEval-2024 Task 3 subtask 2 submission, per
        conversation (``meta["conversation_ID"]`` or a ``dia<N>utt<M>`` clip name); says how many rows
        had neither and were left out of it."""
        path = out_dir / f"{task}_semeval.json"
        written, left_out = write_semeval(rows, path)
        if not left_out:
            return []
        if not written:
            return [
                f"no {path.name}: none of the {len(rows)} rows has a conversation_ID or a dia<N>utt<M> "
                "clip name to group them by"
            ]
        return [
            f"{path}: {left_out} of {len(rows)} rows left out ({written} conversations written): "
            "no conversation_ID and no dia<N>utt<M> clip name to group them by"
        ]

    def baseline(self, name: str, rows: Sequence[Prediction], mode: str = "exact") -> list[str]:
        """``self_cause``: the target utterance as its own cause, read from the query's target line;
        ``self_previous``: it and the utterance before it."""
        if name not in self.baselines:
            return super().baseline(name, rows, mode)
        answer = self_cause if name == "self_cause" else self_and_previous
        return answer([r.query for r in rows], [r.where for r in rows])

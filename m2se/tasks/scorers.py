"""Scorers: which metric a task reports and what it reads of a scored batch.

A task declares its metrics as a tuple of scorers (``Task.metrics``; default: its answer format's).
A scorer is a frozen description; ``build`` makes the torchmetrics state for one run, whose
``update(batch)`` reads what that metric needs from a ``ScoredBatch`` and whose ``compute()`` gives
flat metric keys. To report another metric for a task, write a scorer here (or in your own module)
and list it in the task's entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, nn

from m2se.metrics.classification import LabelScores, SentimentAcc2
from m2se.metrics.dialogue import DialogueScores
from m2se.metrics.pairs import PairF1
from m2se.metrics.phrases import PhraseF1
from m2se.metrics.text import TextOverlap


@dataclass(frozen=True)
class ScoredBatch:
    """One batch as the scorers see it, every list in record order.

    ``predictions``/``references``: raw answer and gold strings; ``parsed``: the answers as the task's
    parse mode reads them (None: unreadable); ``gold``: the gold answers likewise; ``meta``: each
    record's metadata (``score``, ``dataset``, ``labels``, ``native``, ...).
    """

    predictions: Sequence[str]
    references: Sequence[str]
    parsed: Sequence[Any]
    gold: Sequence[Any]
    meta: Sequence[dict]


class Fed(nn.Module):
    """A metric module and the scorer that feeds it from a ``ScoredBatch``."""

    def __init__(self, metric: nn.Module, scorer: Scorer) -> None:
        super().__init__()
        self.metric, self.scorer = metric, scorer

    def update(self, batch: ScoredBatch) -> None:
        self.scorer.feed(self.metric, batch)

    def compute(self) -> dict[str, Tensor | None]:
        return self.metric.compute()

    def confusion(self) -> tuple[tuple[str, ...], Tensor] | None:
        confusion = getattr(self.metric, "confusion", None)
        return confusion() if confusion is not None else None


class Scorer:
    """Base of the scorers: ``metric`` makes the state for one run, ``feed`` updates it from a batch."""

    def metric(self, task: Any, protocol: str | None) -> nn.Module:
        raise NotImplementedError

    def feed(self, metric: nn.Module, batch: ScoredBatch) -> None:
        metric.update(batch.parsed, batch.gold)

    def build(self, task: Any, protocol: str | None) -> Fed:
        return Fed(self.metric(task, protocol), self)


@dataclass(frozen=True)
class LabelMetrics(Scorer):
    """``accuracy``, ``f1_weighted``, ``f1_macro`` and per label ``f1_<label>`` (or ``recall_<label>``),
    over the task's labels plus "no answer" (``m2se.metrics.classification.LabelScores``)."""

    per_class: Literal["f1", "recall"] = "f1"

    def metric(self, task: Any, protocol: str | None) -> nn.Module:
        return LabelScores(task.labels, per_class=self.per_class)


@dataclass(frozen=True)
class Acc2(Scorer):
    """MOSEI's binary accuracies from ``meta["score"]`` (``acc2_negative_vs_nonnegative``,
    ``acc2_negative_vs_positive``); records without a score are left out."""

    def metric(self, task: Any, protocol: str | None) -> nn.Module:
        if not {"Positive", "Negative"} <= set(task.labels):
            raise ValueError(
                f"task {task.name}: Acc2 reads the labels Positive and Negative, not {task.labels}"
            )
        return SentimentAcc2()

    def feed(self, metric: nn.Module, batch: ScoredBatch) -> None:
        scores = [(m or {}).get("score") for m in batch.meta]
        metric.update(batch.parsed, [None if s is None else float(s) for s in scores])


@dataclass(frozen=True)
class PhraseMetrics(Scorer):
    """``phrase_precision``, ``phrase_recall``, ``phrase_f1``, ``exact_match`` over phrase sets."""

    def metric(self, task: Any, protocol: str | None) -> nn.Module:
        return PhraseF1()


@dataclass(frozen=True)
class TextMetrics(Scorer):
    """``rougeL`` and ``bleu4`` of the answer against the gold text."""

    def metric(self, task: Any, protocol: str | None) -> nn.Module:
        return TextOverlap()


@dataclass(frozen=True)
class PairMetrics(Scorer):
    """``pair_precision``, ``pair_recall``, ``pair_f1``, ``pair_f1_weighted``, ``pair_f1_<emotion>`` and
    ``excluded_by_protocol``, under the run's ECPE protocol (``m2se.metrics.pairs``)."""

    def metric(self, task: Any, protocol: str | None) -> nn.Module:
        return PairF1(protocol or "semeval")

    def feed(self, metric: nn.Module, batch: ScoredBatch) -> None:
        metric.update(batch.predictions, batch.references)


@dataclass(frozen=True)
class DialogueMetrics(Scorer):
    """Per corpus in its native labels (``<corpus>/f1_weighted``, ...) and their mean
    (``m2se.metrics.dialogue.DialogueScores``)."""

    def metric(self, task: Any, protocol: str | None) -> nn.Module:
        return DialogueScores()

    def feed(self, metric: nn.Module, batch: ScoredBatch) -> None:
        metric.update(batch.parsed, batch.meta)

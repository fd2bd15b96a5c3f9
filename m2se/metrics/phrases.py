"""PhraseF1: FER answers as sets of phrases, scored by phrase precision, recall and F1, micro over records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class PhraseF1(Metric):
    """``update`` takes parsed answers: phrases already normalised by the task's parser, or None for no
    answer (no phrase). Each record's phrases are compared as a set; ``exact_match`` is the share of
    records whose sets are equal."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("correct", "predicted", "gold", "exact", "records"):
            self.add_state(name, torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, predicted: Sequence[Iterable[str] | None], gold: Sequence[Iterable[str] | None]) -> None:
        correct = n_predicted = n_gold = exact = 0
        for pred, true in zip(predicted, gold, strict=True):
            pred, true = set(pred or ()), set(true or ())
            correct += len(pred & true)
            n_predicted += len(pred)
            n_gold += len(true)
            exact += pred == true
        self.correct += correct
        self.predicted += n_predicted
        self.gold += n_gold
        self.exact += exact
        self.records += len(gold)

    def compute(self) -> dict[str, Tensor]:
        # Counts: a zero denominator always comes with a zero numerator, and 0/0 scores 0.
        return {
            "phrase_precision": self.correct / self.predicted.clamp(min=1),
            "phrase_recall": self.correct / self.gold.clamp(min=1),
            "phrase_f1": 2 * self.correct / (self.predicted + self.gold).clamp(min=1),
            "exact_match": self.exact / self.records.clamp(min=1),
        }

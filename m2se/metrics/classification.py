"""Closed-label-set scores (msa, mer, erc) on torchmetrics, "no answer" being one class more.

An unparseable answer goes to class K, after the K real labels. Gold is never K, so such an answer
is a false negative for its gold class and a false positive for no real class, the way scikit-learn
scores a prediction outside ``labels=`` (docs/PROTOCOL.md §6): weighted F1 over K+1 classes gives class K
no weight (it has no support).

A class that is neither in the gold labels nor predicted has no F1 (a class without gold, no recall):
it is reported as None,
and macro F1 is the mean over the real classes present in gold or predictions (scikit-learn's
``f1_score(average="macro")`` without ``labels=``), not a mean that counts absent classes as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassRecall,
)


class LabelScores(nn.Module):
    """Accuracy, weighted and macro F1, per-class F1 or recall, and the confusion matrix.

    ``update`` takes parsed answers: a label of ``labels``, or None for no answer (predictions only).
    """

    def __init__(self, labels: Sequence[str], per_class: Literal["f1", "recall"] = "f1"):
        super().__init__()
        self.labels = tuple(labels)
        self.per_class = per_class
        n = len(self.labels) + 1
        self.accuracy = MulticlassAccuracy(n, average="micro")
        self.f1_weighted = MulticlassF1Score(n, average="weighted")
        self.f1 = MulticlassF1Score(n, average=None)
        self.recall = MulticlassRecall(n, average=None)
        self.confmat = MulticlassConfusionMatrix(n)

    def update(self, predicted: Sequence[str | None], gold: Sequence[str]) -> None:
        index = {label: i for i, label in enumerate(self.labels)}
        device = self.accuracy.device
        preds = torch.tensor([index.get(p, len(self.labels)) for p in predicted], device=device)
        target = torch.tensor([index[g] for g in gold], device=device)
        for metric in (self.accuracy, self.f1_weighted, self.f1, self.recall, self.confmat):
            metric.update(preds, target)

    def compute(self) -> dict[str, Tensor | None]:
        k = len(self.labels)
        f1, recall = self.f1.compute(), self.recall.compute()
        matrix = self.confmat.compute()
        in_gold = matrix.sum(1)[:k] > 0
        present = in_gold | (matrix.sum(0)[:k] > 0)  # in gold or predicted
        out: dict[str, Tensor | None] = {
            "accuracy": self.accuracy.compute(),
            "f1_weighted": self.f1_weighted.compute(),
            "f1_macro": f1[:k][present].mean() if present.any() else None,
        }
        # Recall is defined by the gold class alone; F1 also by predictions of it.
        per_class, defined = (f1, present) if self.per_class == "f1" else (recall, in_gold)
        out.update(
            {
                f"{self.per_class}_{label.lower()}": per_class[i] if defined[i] else None
                for i, label in enumerate(self.labels)
            }
        )
        return out

    def confusion(self) -> tuple[tuple[str, ...], Tensor]:
        """(labels, counts): rows are gold labels, columns the predicted labels and then "no answer"."""
        return self.labels, self.confmat.compute()[: len(self.labels)]


class SentimentAcc2(nn.Module):
    """MOSEI binary accuracy from the source score in [-3, 3], under both conventions in use.

    ``acc2_negative_vs_nonnegative``: gold is Negative iff score < 0, every record counts.
    ``acc2_negative_vs_positive``: records scored exactly 0 are left out.
    A prediction is the parsed label (Positive / Negative); no answer is wrong under both.
    Records without a score are left out of both; a key is absent when no record counted for it.
    """

    def __init__(self):
        super().__init__()
        self.negative_vs_nonnegative = MeanMetric()
        self.negative_vs_positive = MeanMetric()

    def update(self, predicted: Sequence[str | None], scores: Sequence[float | None]) -> None:
        nonnegative, positive = [], []
        for label, score in zip(predicted, scores, strict=True):
            if score is None:
                continue
            right = label == ("Negative" if score < 0 else "Positive")
            nonnegative.append(right)
            if score != 0:
                positive.append(right)
        device = self.negative_vs_positive.device
        self.negative_vs_nonnegative.update(torch.tensor(nonnegative, dtype=torch.float, device=device))
        self.negative_vs_positive.update(torch.tensor(positive, dtype=torch.float, device=device))

    def compute(self) -> dict[str, Tensor]:
        out = {
            "acc2_negative_vs_nonnegative": self.negative_vs_nonnegative.compute(),
            "acc2_negative_vs_positive": self.negative_vs_positive.compute(),
        }
        return {key: value for key, value in out.items() if not value.isnan()}

"""TextOverlap: ROUGE-L and BLEU-4 of free-text answers (eri) against the gold text, on torchmetrics.

ROUGE-L is the F-measure per record (torchmetrics' default normalisation: lower case, non-alphanumeric
characters as spaces), averaged over records. BLEU-4 is corpus BLEU (torchmetrics ``BLEUScore``, no
smoothing) over words of the texts as ``m2se.parsing.normalize`` writes them (lower case, no punctuation).
No answer scores as the empty text. Neither needs nltk (no stemming, no ``rougeLsum``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.functional.text import rouge_score
from torchmetrics.text import BLEUScore

from m2se.parsing import normalize


def rouge_l(predicted: Sequence[str], gold: Sequence[str]) -> list[float]:
    """ROUGE-L F-measure of each (predicted, gold) pair, normalised as ``TextOverlap`` scores it."""
    return [
        float(rouge_score(p, g, rouge_keys="rougeL")["rougeL_fmeasure"])
        for p, g in zip(predicted, gold, strict=True)
    ]


class TextOverlap(nn.Module):
    def __init__(self):
        super().__init__()
        # ROUGEScore keeps one list entry per record (gathered one by one under DDP); a batch mean
        # weighted by the batch size sums across processes instead.
        self.rouge_l = MeanMetric()
        self.bleu = BLEUScore(n_gram=4)

    def update(self, predicted: Sequence[str | None], gold: Sequence[str]) -> None:
        predicted = [p or "" for p in predicted]
        if len(predicted) != len(gold):
            raise ValueError(f"{len(predicted)} predictions for {len(gold)} references")
        if not gold:
            return
        rouge = rouge_score(predicted, list(gold), rouge_keys="rougeL")["rougeL_fmeasure"]
        self.rouge_l.update(rouge, weight=len(gold))
        self.bleu.update([normalize(p) for p in predicted], [[normalize(g)] for g in gold])

    def compute(self) -> dict[str, Tensor]:
        return {"rougeL": self.rouge_l.compute(), "bleu4": self.bleu.compute()}

"""PairF1: emotion-cause pair F1 for ECPE under two protocols (docs/PROTOCOL.md §8).

A pair is (target utterance, emotion, cause utterance), written ``t_emotion,c``; answers join pairs
with ``;``.

``semeval`` (SemEval-2024 Task 3 subtask 2, the field's standard): every record counts, including
those whose gold is empty; pairs are parsed and deduplicated per record; only the six emotions count
(neutral pairs are ignored, as the official scorer ignores them); ``pair_f1_weighted`` averages the
per-emotion F1 with weights equal to each emotion's share of gold pairs.

``emoverse`` (the released EmoVerse scorer, minus its crashes): records whose gold is empty are
skipped (counted in ``excluded_by_protocol``); pairs are the exact strings between ``;`` (surrounding whitespace stripped), so a pair
predicted twice counts twice, and a malformed piece is simply a wrong pair; micro counts include
every piece, per-emotion counts only the six emotions, read as the scorer reads them
(``piece.split(",")[0].split("_")[1]``).

Under both, an answer that parses to None (no readable pair at all) predicts no pair, and the empty
answer is the valid "no cause" answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor
from torchmetrics import Metric

from m2se.parsing import ECPE_EMOTIONS, parse_pairs

Protocol = Literal["semeval", "emoverse"]
PROTOCOLS = ("semeval", "emoverse")

# One count per emotion, plus "other" for emoverse pieces with no readable emotion.
SLOTS = (*ECPE_EMOTIONS, "other")
SCORED_EMOTIONS = tuple(e for e in ECPE_EMOTIONS if e != "neutral")


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    # Counts: a zero denominator always comes with a zero numerator here, and 0/0 scores 0.
    return num / den.clamp(min=1)


def _semeval(prediction: str, reference: str) -> tuple[list[str], list[str], list[str]]:
    predicted = set(parse_pairs(prediction) or ())
    gold = set(parse_pairs(reference) or ())
    return [e for _, e, _ in predicted & gold], [e for _, e, _ in predicted], [e for _, e, _ in gold]


def _pieces(text: str) -> list[str]:
    return [piece.strip() for piece in text.split(";") if piece.strip()]


def _released_emotion(piece: str) -> str:
    parts = piece.split(",")[0].split("_")
    return parts[1] if len(parts) > 1 and parts[1] in ECPE_EMOTIONS else "other"


def _emoverse(prediction: str, reference: str) -> tuple[list[str], list[str], list[str]]:
    if not reference.strip():
        return [], [], []
    gold = _pieces(reference)
    predicted = _pieces(prediction) if parse_pairs(prediction) is not None else []
    correct = [p for p in predicted if p in gold]
    return tuple([_released_emotion(p) for p in pieces] for pieces in (correct, predicted, gold))


class PairF1(Metric):
    """Pair precision, recall and F1 (micro), weighted F1 and F1 per emotion, from raw answer strings."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, protocol: Protocol = "semeval", **kwargs):
        super().__init__(**kwargs)
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown ECPE protocol {protocol!r} (expected one of {', '.join(PROTOCOLS)})")
        self.protocol = protocol
        for name in ("correct", "predicted", "gold"):
            self.add_state(name, torch.zeros(len(SLOTS)), dist_reduce_fx="sum")
        # Records the protocol leaves out (emoverse: those whose gold is empty), reported as a denominator.
        self.add_state("excluded", torch.zeros(()), dist_reduce_fx="sum")

    def update(self, predictions: Sequence[str], references: Sequence[str]) -> None:
        count = _semeval if self.protocol == "semeval" else _emoverse
        tallies = {"correct": Counter(), "predicted": Counter(), "gold": Counter()}
        for prediction, reference in zip(predictions, references, strict=True):
            if self.protocol == "emoverse" and not reference.strip():
                self.excluded += 1
            for tally, emotions in zip(tallies.values(), count(prediction, reference), strict=True):
                tally.update(emotions)
        for name, tally in tallies.items():
            counts = torch.tensor([tally[slot] for slot in SLOTS], dtype=torch.float, device=self.device)
            setattr(self, name, getattr(self, name) + counts)

    def compute(self) -> dict[str, Tensor | None]:
        scored = torch.tensor([slot in SCORED_EMOTIONS for slot in SLOTS], device=self.device)
        micro = scored if self.protocol == "semeval" else torch.ones_like(scored)
        correct, predicted, gold = (s[micro].sum() for s in (self.correct, self.predicted, self.gold))
        per_emotion = _ratio(2 * self.correct, self.predicted + self.gold)
        out = {
            "pair_precision": _ratio(correct, predicted),
            "pair_recall": _ratio(correct, gold),
            "pair_f1": _ratio(2 * correct, predicted + gold),
            "pair_f1_weighted": _ratio((per_emotion * self.gold)[scored].sum(), self.gold[scored].sum()),
            "excluded_by_protocol": self.excluded.int(),
        }
        # An emotion with neither gold nor predicted pairs has no F1 (None), as for classification.
        present = (self.predicted + self.gold) > 0
        out.update(
            {
                f"pair_f1_{e}": per_emotion[i] if present[i] else None
                for i, e in enumerate(SLOTS)
                if e in SCORED_EMOTIONS
            }
        )
        return out

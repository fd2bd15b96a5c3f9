"""Metric primitives on torchmetrics, independent of any task: label scores, Acc-2, phrase F1, text
overlap, ECPE pair F1 and per-corpus dialogue scores. A task chooses its own with scorers
(``m2se.tasks.scorers``); ``m2se.tasks.TaskMetrics`` runs them. This package imports nothing of the
project but the answer grammar (``m2se.parsing``) and the dialogue label sets."""

from m2se.metrics.classification import LabelScores, SentimentAcc2
from m2se.metrics.dialogue import DialogueScores
from m2se.metrics.pairs import PROTOCOLS, PairF1, Protocol
from m2se.metrics.phrases import PhraseF1
from m2se.metrics.text import TextOverlap

__all__ = [
    "PROTOCOLS",
    "DialogueScores",
    "LabelScores",
    "PairF1",
    "PhraseF1",
    "Protocol",
    "SentimentAcc2",
    "TextOverlap",
]

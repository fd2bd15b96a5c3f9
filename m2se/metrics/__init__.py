"""Metrics per task on torchmetrics: ``TaskMetrics`` is the entry point; the rest are its parts."""

from m2se.metrics.baselines import majority_baseline, self_cause_baseline
from m2se.metrics.classification import LabelScores, SentimentAcc2
from m2se.metrics.collection import TaskMetrics
from m2se.metrics.pairs import PairF1, Protocol
from m2se.metrics.phrases import PhraseF1
from m2se.metrics.text import TextOverlap

__all__ = [
    "LabelScores",
    "PairF1",
    "PhraseF1",
    "Protocol",
    "SentimentAcc2",
    "TaskMetrics",
    "TextOverlap",
    "majority_baseline",
    "self_cause_baseline",
]

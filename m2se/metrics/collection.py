"""TaskMetrics: one task's metrics from raw generated texts and gold response strings.

Used by evaluation and by validation inside training: ``update`` per batch, ``compute`` once per
epoch (synchronised across processes under DDP; every process must call it), ``reset`` after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn
from torchmetrics import Metric, SumMetric

from m2se.metrics.classification import LabelScores, SentimentAcc2
from m2se.metrics.dialogue import REQUIRED, DialogueScores
from m2se.metrics.pairs import PROTOCOLS, PairF1, Protocol
from m2se.metrics.phrases import PhraseF1
from m2se.metrics.text import TextOverlap
from m2se.parsing import REFERENCE_MODES, ParseMode
from m2se.tasks import Task, get_task


class TaskMetrics(nn.Module):
    """Flat metric keys per task, plus ``count``, ``unparseable`` and ``unparseable_rate`` for every task.

    - msa: ``accuracy``, ``f1_weighted``, ``f1_macro``, ``recall_<label>``; with a source score in
      ``meta["score"]`` also ``acc2_negative_vs_nonnegative`` and ``acc2_negative_vs_positive``.
    - mer, erc: ``accuracy``, ``f1_weighted``, ``f1_macro``, ``f1_<label>``; ``confusion()``.
    - fer: ``phrase_precision``, ``phrase_recall``, ``phrase_f1``, ``exact_match``.
    - eri: ``rougeL``, ``bleu4``.
    - ecpe: ``pair_precision``, ``pair_recall``, ``pair_f1``, ``pair_f1_weighted``, ``pair_f1_<emotion>``,
      scored under ``protocol`` (see ``m2se.metrics.pairs``).
    - speaker_id, mer2023: as erc.
    - erc_dialog, emotion_predict: per corpus in native labels, ``<corpus>/f1_weighted`` etc., and their
      mean as ``f1_weighted`` etc. (see ``m2se.metrics.dialogue``).

    ``parse`` (classification tasks): a mode of ``m2se.parsing``; ``self.parse`` is the mode this task is
    read with (a reference mode the task has no scorer for reads as ``exact``). Reference modes that put
    a fallback label in place of an unreadable answer count those in ``fallback_answers``.

    Labels in keys are lower case. An answer the task's parser cannot read counts in ``unparseable`` and
    is wrong (PROTOCOL.md §4). A class that is neither in the gold labels nor predicted has F1 (or
    recall) None, and macro F1 averages the classes present (scikit-learn's convention).
    """

    def __init__(self, task: str | Task, protocol: Protocol = "semeval", parse: ParseMode = "exact"):
        super().__init__()
        self.task = get_task(task) if isinstance(task, str) else task
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown ECPE protocol {protocol!r} (expected one of {', '.join(PROTOCOLS)})")
        self.protocol, self.parse = protocol, self.task.parse_mode(parse)
        self.count = SumMetric()
        self.unparseable = SumMetric()
        self.fallback_answers = SumMetric()
        self.acc2 = SentimentAcc2() if self.task.name == "msa" else None
        kind = self.task.kind
        if self.task.open_labels:
            self.scores = DialogueScores()
        elif kind == "classification":
            self.scores = LabelScores(
                self.task.labels, per_class="recall" if self.task.name == "msa" else "f1"
            )
        elif kind == "phrases":
            self.scores = PhraseF1()
        elif kind == "text":
            self.scores = TextOverlap()
        else:
            self.scores = PairF1(protocol)

    def update(
        self, predictions: Sequence[str], references: Sequence[str], meta: Sequence[dict] | None = None
    ) -> None:
        if len(predictions) != len(references) or (meta is not None and len(meta) != len(references)):
            sizes = f"{len(predictions)} predictions, {len(references)} references"
            raise ValueError(
                f"{self.task.name}: {sizes}" + (f", {len(meta)} meta" if meta is not None else "")
            )
        if not references:
            return
        if self.task.open_labels:
            _check_meta(self.task.name, meta, len(references))
            parsed = [
                self.task.parse(p, m["labels"], self.parse) for p, m in zip(predictions, meta, strict=True)
            ]
        else:
            parsed = [self.task.parse(p, mode=self.parse) for p in predictions]
        self.count.update(float(len(parsed)))
        self.unparseable.update(float(sum(p is None for p in parsed)))
        self.fallback_answers.update(float(sum(self.task.substituted(p, self.parse) for p in predictions)))
        if isinstance(self.scores, DialogueScores):
            self.scores.update(parsed, meta)
        elif isinstance(self.scores, PairF1):
            self.scores.update(predictions, references)
        else:
            self.scores.update(parsed, [self._gold(r) for r in references])
        if self.acc2 is not None:
            scores = [_score(m) for m in meta] if meta is not None else [None] * len(parsed)
            self.acc2.update(parsed, scores)

    def compute(self) -> dict[str, Any]:
        out = dict(self.scores.compute())
        if self.acc2 is not None:
            out.update(self.acc2.compute())
        out = {key: value.item() if isinstance(value, Tensor) else value for key, value in out.items()}
        count, unparseable = int(self.count.compute()), int(self.unparseable.compute())
        out.update(count=count, unparseable=unparseable, unparseable_rate=unparseable / max(count, 1))
        if self.parse in REFERENCE_MODES:
            out["fallback_answers"] = int(self.fallback_answers.compute())
        return out

    def confusion(self) -> tuple[tuple[str, ...], Tensor]:
        """(labels, counts): rows are gold labels, columns the predicted labels and then "no answer"."""
        if not isinstance(self.scores, LabelScores | DialogueScores):
            raise ValueError(f"task {self.task.name} has no confusion matrix (not a classification task)")
        return self.scores.confusion()

    def reset(self) -> None:
        for module in self.modules():
            if isinstance(module, Metric):
                module.reset()

    def _gold(self, reference: str) -> Any:
        if self.task.kind == "text":
            return reference
        answer = self.task.gold(reference, self.parse)
        if self.task.kind == "classification" and answer not in self.task.labels:
            labels = ", ".join(f"'{label}.'" for label in self.task.labels)
            if self.parse == "emotion_llama":
                labels = ", ".join(self.task.labels) + " (its last word, exactly; parse=emotion_llama)"
            raise ValueError(
                f"unknown gold label {reference!r} for task {self.task.name} (expected one of {labels})"
            )
        return answer


def _score(meta: dict | None) -> float | None:
    score = (meta or {}).get("score")
    return None if score is None else float(score)


def _check_meta(task: str, meta: Sequence[dict] | None, n: int) -> None:
    if meta is None or any(not all(k in (m or {}) for k in REQUIRED) for m in meta):
        raise ValueError(
            f"{task} records need 'dataset' and 'labels' keys (as python -m m2se.data.build dialogue writes)"
        )

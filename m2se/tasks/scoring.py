"""TaskMetrics: one task's metrics from raw generated texts and gold response strings.

Used by evaluation and by validation inside training: ``update`` per batch, ``compute`` once per
epoch (synchronised across processes under DDP; every process must call it), ``reset`` after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn
from torchmetrics import Metric, SumMetric

from m2se.metrics.pairs import PROTOCOLS
from m2se.parsing import REFERENCE_MODES
from m2se.tasks.catalog import get_task
from m2se.tasks.prediction import Prediction
from m2se.tasks.scorers import ScoredBatch
from m2se.tasks.task import Task


class TaskMetrics(nn.Module):
    """The task's declared metrics (``Task.metrics``, see ``m2se.tasks.scorers`` for their keys), plus
    ``count``, ``unparseable`` and ``unparseable_rate`` for every task.

    ``parse``: a parse mode of ``m2se.parsing`` (None: the task's default); ``self.parse`` is the mode
    the task is read with (a reference mode the task has no scorer for reads as ``exact``). Reference
    modes that put a fallback label in place of an unreadable answer count those in
    ``fallback_answers``. ``protocol``: the ECPE protocol (``m2se.metrics.pairs``).

    An answer the task's parser cannot read counts in ``unparseable`` and is wrong. A class that is
    neither in the gold labels nor predicted has F1 (or recall) None, and macro F1 averages the
    classes present (scikit-learn's convention).
    """

    def __init__(self, task: str | Task, protocol: str = "semeval", parse: str | None = "exact"):
        super().__init__()
        self.task = get_task(task) if isinstance(task, str) else task
        if not isinstance(self.task, Task):
            raise TypeError(f"TaskMetrics takes a task name or Task, got {task!r}"[:200])
        if parse is not None and not isinstance(parse, str):
            raise TypeError(f"parse must be a parse mode name or None, got {parse!r}"[:200])
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown ECPE protocol {protocol!r} (expected one of {', '.join(PROTOCOLS)})")
        self.protocol, self.parse = protocol, self.task.parse_mode(parse)
        self.count = SumMetric()
        self.unparseable = SumMetric()
        self.fallback_answers = SumMetric()
        self.scores = nn.ModuleList(s.build(self.task, protocol) for s in self.task.scorers())

    @property
    def reading(self) -> str:
        """How answers were read, for reports: the parse mode, or the answer format's kind."""
        return self.task.answer.reading(self.parse)

    @property
    def protocol_used(self) -> str | None:
        """The ECPE protocol when this task's scores depend on it, else None."""
        return self.protocol if self.task.answer.uses_protocol else None

    def add(self, predictions: Sequence[Prediction]) -> None:
        """Score answered predictions (each with ``response`` and ``label``) and set their ``parsed``."""
        parsed = self.update(
            [p.response for p in predictions], [p.label for p in predictions], [p.meta for p in predictions]
        )
        for prediction, answer in zip(predictions, parsed, strict=True):
            prediction.parsed = answer

    def update(
        self, predictions: Sequence[str], references: Sequence[str], meta: Sequence[dict] | None = None
    ) -> list[Any]:
        """Score raw answers against gold strings; returns the answers as parsed."""
        if len(predictions) != len(references) or (meta is not None and len(meta) != len(references)):
            sizes = f"{len(predictions)} predictions, {len(references)} references"
            raise ValueError(
                f"{self.task.name}: {sizes}" + (f", {len(meta)} meta" if meta is not None else "")
            )
        if isinstance(predictions, str) or isinstance(references, str):
            raise TypeError(
                f"{self.task.name}: predictions and references are sequences of strings, not a string"
            )
        if not all(isinstance(r, str) for r in references):
            raise TypeError(f"{self.task.name}: every reference must be a gold answer string")
        if not references:
            return []
        answer = self.task.answer
        answer.check_batch(self.task.name, meta)
        for m in meta or ():
            problem = self.task.check_meta(m) if isinstance(m, dict) else f"meta must be a dict, got {m!r}"
            if problem:
                raise ValueError(f"{self.task.name}: {problem}")
        meta = list(meta) if meta is not None else [{} for _ in references]
        parsed = [
            self.task.parse(p, answer.record_labels(m), self.parse)
            for p, m in zip(predictions, meta, strict=True)
        ]
        self.count.update(float(len(parsed)))
        self.unparseable.update(float(sum(p is None for p in parsed)))
        self.fallback_answers.update(float(sum(self.task.substituted(p, self.parse) for p in predictions)))
        gold = [self._gold(r) for r in references]
        batch = ScoredBatch(list(predictions), list(references), parsed, gold, meta)
        for scores in self.scores:
            scores.update(batch)
        return parsed

    def compute(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for scores in self.scores:
            out.update(scores.compute())
        out = {key: value.item() if isinstance(value, Tensor) else value for key, value in out.items()}
        count, unparseable = int(self.count.compute()), int(self.unparseable.compute())
        out.update(count=count, unparseable=unparseable, unparseable_rate=unparseable / max(count, 1))
        if self.parse in REFERENCE_MODES:
            out["fallback_answers"] = int(self.fallback_answers.compute())
        return out

    def confusion(self) -> tuple[tuple[str, ...], Tensor]:
        """(labels, counts): rows are gold labels, columns the predicted labels and then "no answer".
        ValueError when the task's metrics keep no single confusion matrix."""
        refused = None
        for scores in self.scores:
            try:
                found = scores.confusion()
            except ValueError as err:  # dialogue scores over several corpora: one matrix each would be needed
                refused = refused or err
                continue
            if found is not None:
                return found
        raise refused or ValueError(
            f"task {self.task.name} has no confusion matrix (not a classification task)"
        )

    def reset(self) -> None:
        for module in self.modules():
            if isinstance(module, Metric):
                module.reset()

    def _gold(self, reference: str) -> Any:
        problem = self.task.answer.gold_problem(self.task.name, reference, self.parse)
        if problem is None:
            return self.task.gold(reference, self.parse)
        labels = ", ".join(f"'{label}.'" for label in self.task.labels)
        if self.parse == "emotion_llama":
            labels = ", ".join(self.task.labels) + " (its last word, exactly; parse=emotion_llama)"
        raise ValueError(
            f"unknown gold label {reference!r} for task {self.task.name} (expected one of {labels})"
        )

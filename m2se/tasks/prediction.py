"""Prediction: one answer to one record, the row type every scoring path shares.

Validation and testing inside training, ``evaluate.py`` (generated answers, baselines and prediction
files) and prediction all make ``Prediction`` objects and score them with ``TaskMetrics.add``;
``evaluate.py`` writes them as ``predictions/<task>.jsonl`` lines (``Prediction.row``), which
``m2se.predictions.read_predictions`` reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def jsonable(parsed: Any) -> Any:
    """A parsed answer as JSON: ECPE triples and FER phrases become lists."""
    if isinstance(parsed, list):
        return [list(p) for p in parsed]
    return list(parsed) if isinstance(parsed, tuple) else parsed


@dataclass
class Prediction:
    """One record's answer.

    ``task``: the task's name; ``where``: ``file:record`` of the record it answers; ``query``: the
    question as the model saw it (before the chat template); ``label``: the gold answer string (None
    for a question without one); ``media``: image and video paths; ``meta``: the record's other
    fields (``score``, ``dataset``, ``labels``, ``native``, ``conversation_ID``, ...); ``response``: the
    model's raw answer (None until answered); ``parsed``: the answer as the task's parser read it.
    """

    task: str
    where: str
    query: str
    label: str | None
    media: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    response: str | None = None
    parsed: Any = None

    @classmethod
    def of_record(cls, record: Any, response: str | None = None) -> Prediction:
        """The prediction row of an ``m2se.data.records.Record`` (answered with ``response``, if given)."""
        return cls(
            record.task,
            record.where,
            record.query,
            record.response,
            [str(p) for p in record.media],
            dict(record.meta),
            response,
        )

    def row(self) -> dict:
        """The JSON object ``predictions/<task>.jsonl`` holds for this prediction."""
        return {
            "where": self.where,
            "query": self.query,
            "label": self.label,
            "media": self.media,
            "meta": self.meta,
            "response": self.response,
            "parsed": jsonable(self.parsed),
        }

"""predict.py's output lines for one batch: the raw answer, the parsed answer, label probabilities."""

from __future__ import annotations

import contextlib
from typing import Protocol

from torch import nn

from m2se.data.processor import M2SEProcessor
from m2se.model.label_scores import label_probabilities
from m2se.tasks import TASKS
from m2se.tasks.prediction import jsonable


class Answering(Protocol):
    """What ``answer_lines`` uses of ``M2SEModule``."""

    model: nn.Module
    processor: M2SEProcessor
    parse: str | None

    def generate_answers(self, batch: dict, task: str) -> list[str]: ...

    def placed(self, batch: dict) -> contextlib.AbstractContextManager: ...


def scored(task: str) -> bool:
    """Whether ``task``'s answers get ``scores``: a closed label set (open-label tasks offer each
    record its own labels, and phrase, text and pair answers have none to choose from)."""
    return bool(TASKS[task].labels) and not TASKS[task].open_labels


def answer_lines(module: Answering, batch: dict, scores: bool = True) -> list[dict]:
    """One line per input of a left-padded generation batch (``EncodedDataset(generation=True)``).

    A sample that could not be read (``batch["skipped"]``) gets ``error``; the others get ``response``
    (greedy, as evaluation generates), ``answer`` (parsed with the module's parse mode, None when
    unreadable) and, when ``scores`` and the task has a closed label set, ``scores`` (label →
    probability, summing to 1; ``m2se.model.label_scores``) with its ``score_method``. A record that
    carried a gold ``response`` gets it as ``label``; one whose query was cut to the token budget gets
    ``truncated``. ``input`` is the record's ``file:record``.
    """
    lines = [
        {"input": skip.where, "task": batch["task"], "response": None, "answer": None, "error": skip.message}
        for skip in batch["skipped"]
    ]
    if batch["input_ids"] is None:
        return lines
    task = TASKS[batch["task"]]
    responses = module.generate_answers(batch, task.name)
    probabilities = method = None
    if scores and scored(task.name):
        answers = [module.processor.answer_ids(task.format(label)) for label in task.labels]
        probabilities, method = label_probabilities(
            module.model, batch, answers, module.processor.model_inputs(batch), module.placed(batch)
        )
    for i, (record, response) in enumerate(zip(batch["records"], responses, strict=True)):
        answer = task.parse(response, record.meta.get("labels"), module.parse)
        line = {"input": record.where, "task": task.name, "response": response, "answer": jsonable(answer)}
        if probabilities is not None:
            line["scores"] = dict(zip(task.labels, probabilities[i].tolist(), strict=True))
            line["score_method"] = method
        if record.where in batch.get("truncated_where", ()):
            line["truncated"] = True  # the query's start was cut to fit data.processor.max_length
        if record.response:
            line["label"] = record.response
        lines.append(line)
    return lines

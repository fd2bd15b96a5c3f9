"""Trivial baselines worth reporting beside any model number (PROTOCOL.md §4)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from m2se.tasks import Task, get_task

_TARGET = re.compile(r"^Target utterance:([0-9]{1,9})_([A-Za-z]+)\.", re.MULTILINE)


def majority_baseline(references: Sequence[str], task: str | Task) -> list[str]:
    """The most common gold answer, predicted for every record.

    Classification tasks compare parsed labels (ties go to the task's label order) and answer with
    the first gold string of that label as the file writes it (``Neutral.``, MER2023's ``neutral``), so
    that every parse mode reads it as that label; other tasks take the most common reference string.
    """
    task = get_task(task) if isinstance(task, str) else task
    if not references:
        return []
    if task.open_labels:  # labels differ per corpus: the most common answer, ties to the first seen
        counts = Counter(task.parse(r) for r in references)
        best = max(counts.values())
        return [next(r for r in references if counts[task.parse(r)] == best)] * len(references)
    if task.kind == "classification":
        counts = Counter(task.parse(r) for r in references)
        label = max(task.labels, key=lambda label: counts[label])
        answer = next(r for r in references if task.parse(r) == label)
    else:
        answer = Counter(references).most_common(1)[0][0]
    return [answer] * len(references)


def self_cause_baseline(queries: Sequence[str], wheres: Sequence[str] | None = None) -> list[str]:
    """For ECPE queries: the target utterance as its own cause, ``{t}_{emotion},{t}``, read from the
    template's ``Target utterance:{t}_{emotion}.`` line. ValueError naming ``wheres[i]`` (``file:record``;
    default ``query i``) for a query without that line."""
    answers = []
    for i, query in enumerate(queries):
        found = _TARGET.findall(query)
        if not found:
            where = wheres[i] if wheres is not None else f"query {i}"
            raise ValueError(f"{where}: no 'Target utterance:{{t}}_{{emotion}}.' line (not an ECPE query?)")
        target, emotion = found[-1]
        answers.append(f"{target}_{emotion.lower()},{target}")
    return answers

"""Trivial baselines worth reporting beside any model number: their answers, as a model would write them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

_TARGET = re.compile(r"^Target utterance:([0-9]{1,9})_([A-Za-z]+)\.", re.MULTILINE)


def majority(
    references: Sequence[str], parse: Callable[[str], str | None], labels: Sequence[str]
) -> list[str]:
    """The most common gold label (``parse`` reads each reference; ties go to ``labels``' order),
    answered for every record with the first gold string of that label as the file writes it
    (``Neutral.``, MER2023's ``neutral``), so that every parse mode reads it as that label."""
    if not references:
        return []
    counts = Counter(parse(r) for r in references)
    label = max(labels, key=lambda label: counts[label])
    return [next(r for r in references if parse(r) == label)] * len(references)


def self_cause(queries: Sequence[str], wheres: Sequence[str] | None = None) -> list[str]:
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

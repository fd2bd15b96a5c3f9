"""Trivial baselines worth reporting beside any model number: their answers, as a model would write them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

_TARGET = re.compile(r"^Target utterance:([0-9]{1,9})_([A-Za-z]+)\.", re.MULTILINE)


def majority(
    references: Sequence[str],
    parse: Callable[[str], str | None],
    labels: Sequence[str],
    read: Callable[[str], str | None] | None = None,
    write: Callable[[str], str] | None = None,
) -> list[str]:
    """The most common gold label (``parse`` reads each reference; ties go to ``labels``' order),
    answered for every record with the first gold string of that label as the file writes it
    (``Neutral.``, MER2023's ``neutral``) that ``read`` (how the run's parse mode reads an answer)
    reads as that label, else with ``write(label)`` (the released files' form)."""
    if not references:
        return []
    counts = Counter(parse(r) for r in references)
    label = max(labels, key=lambda label: counts[label])
    candidates = [r for r in references if parse(r) == label] + ([write(label)] if write else [])
    readable = [c for c in candidates if read is None or read(c) == label]
    return [(readable or candidates)[0]] * len(references)


def _targets(queries: Sequence[str], wheres: Sequence[str] | None) -> list[tuple[int, str]]:
    """(target, emotion) of each ECPE query's ``Target utterance:{t}_{emotion}.`` line."""
    targets = []
    for i, query in enumerate(queries):
        found = _TARGET.findall(query)
        if not found:
            where = wheres[i] if wheres is not None else f"query {i}"
            raise ValueError(f"{where}: no 'Target utterance:{{t}}_{{emotion}}.' line (not an ECPE query?)")
        target, emotion = found[-1]
        targets.append((int(target), emotion.lower()))
    return targets


def self_cause(queries: Sequence[str], wheres: Sequence[str] | None = None) -> list[str]:
    """For ECPE queries: the target utterance as its own cause, ``{t}_{emotion},{t}``, read from the
    template's ``Target utterance:{t}_{emotion}.`` line. ValueError naming ``wheres[i]`` (``file:record``;
    default ``query i``) for a query without that line."""
    return [f"{t}_{emotion},{t}" for t, emotion in _targets(queries, wheres)]


def self_and_previous(queries: Sequence[str], wheres: Sequence[str] | None = None) -> list[str]:
    """For ECPE queries: the target utterance and the one before it as its causes
    (``{t}_{emotion},{t};{t}_{emotion},{t-1}``; the first utterance has only itself). Errors as ``self_cause``."""
    return [
        f"{t}_{emotion},{t}" + (f";{t}_{emotion},{t - 1}" if t > 1 else "")
        for t, emotion in _targets(queries, wheres)
    ]


def most_frequent_set(references: Sequence[str], parse: Callable[[str], Sequence[str] | None]) -> list[str]:
    """The most frequent gold answer read as a set (FER's phrases: order and case do not matter; ties:
    the first seen), answered for every record with its first gold string."""
    if not references:
        return []
    keys = [frozenset(parse(r) or ()) for r in references]
    key = Counter(keys).most_common(1)[0][0]
    return [references[keys.index(key)]] * len(references)


def constant_text(
    references: Sequence[str], overlap: Callable[[list[str], list[str]], list[float]], candidates: int = 30,
    against: int = 100,
) -> list[str]:  # fmt: skip
    """One answer for every record: the gold text of the first ``candidates`` with the highest mean
    ``overlap`` (ROUGE-L F per pair) to the other texts among the first ``against`` (never to itself) —
    the best constant a writer of typical answers could give, without looking at the input. Costs
    candidates × against pairs. ValueError for fewer than two texts (nothing to choose it against)."""
    if not references:
        return []
    if len(references) < 2:
        raise ValueError("a constant answer needs at least two gold texts to be chosen against")
    pool, targets = list(references[:candidates]), list(references[:against])
    pairs = [(i, j) for i in range(len(pool)) for j in range(len(targets)) if i != j]
    scores = overlap([pool[i] for i, _ in pairs], [targets[j] for _, j in pairs])
    totals = [0.0] * len(pool)
    for (i, _), score in zip(pairs, scores, strict=True):
        totals[i] += score
    best = max(range(len(pool)), key=lambda i: totals[i])
    return [pool[best]] * len(references)

"""Task mixtures from the config: ``{task: weight}`` maps, so that one weight can be overridden alone.

    data.mixtures.second.ecpe=5       # one task's weight, from the command line
    data.mixtures.second.ecpe=0       # leave a task out of the mixture
    +data.mixtures.first.mer2023=3    # add a task

A weight is relative (any positive scale); null weights make the mixture size-based
(``n_task ** (1 / temperature)``, see ``m2se.data.sampler``). The older list form
``[{task: msa, weight: 3}, ...]`` is still read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from m2se.tasks import TASKS


def mixture_weights(
    name: str, entries: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> dict[str, float | None]:
    """The mixture ``name`` as ``{task: weight or None}``, tasks weighted 0 left out.

    ValueError naming the mixture for an unknown task, a weight that is not a finite number >= 0 (or
    null), a task listed twice in the list form, or a mixture left without tasks.
    """
    if isinstance(entries, Mapping):
        pairs = list(entries.items())
    elif isinstance(entries, Sequence) and not isinstance(entries, str):
        if not all(isinstance(e, Mapping) and "task" in e for e in entries):
            raise ValueError(f"mixture '{name}': expected {{task: weight}}, got {list(entries)!r}"[:300])
        pairs = [(e["task"], e.get("weight")) for e in entries]
    else:
        raise ValueError(f"mixture '{name}': expected {{task: weight}}, got {entries!r}"[:300])
    weights: dict[str, float | None] = {}
    for task, weight in pairs:
        if task not in TASKS:
            raise ValueError(f"mixture '{name}': unknown task {task!r} (known: {', '.join(TASKS)})")
        if task in weights:
            raise ValueError(f"mixture '{name}': task '{task}' is listed twice")
        if weight is not None and (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ValueError(
                f"mixture '{name}': task '{task}' has weight {weight!r} (a number >= 0, or null)"
            )
        if weight != 0:
            weights[task] = weight
    if not weights:
        raise ValueError(f"mixture '{name}' has no tasks (or every weight is 0)")
    return weights

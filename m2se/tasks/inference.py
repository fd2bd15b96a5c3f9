"""Which task a query belongs to: from the ECPE template, the dialogue prompts, the instruction, then the identifier."""

from __future__ import annotations

from m2se.tasks.catalog import TASKS
from m2se.tasks.task import Task
from m2se.templates import DIALOGUE_CONTEXT, ECPE_HEAD, IERC_PREDICT, IERC_SELECT, IERC_SPEAKER

_DIALOGUE_MARKERS = (
    ("speaker_id", IERC_SPEAKER.split("<")[0]),
    ("emotion_predict", IERC_PREDICT.split("<")[0]),
    ("erc_dialog", IERC_SELECT.split("<")[0]),
)


def infer_task(query: str) -> str | None:
    """The task ``query`` belongs to, or None when no task or several fit."""
    if query.startswith(ECPE_HEAD[:60]) and "The emotion-cause indices" in query:
        return "ecpe"
    for name, marker in _DIALOGUE_MARKERS:
        if marker in query:
            return name
    if query.startswith(DIALOGUE_CONTEXT):
        return "erc_dialog"
    by_instruction = [
        t.name
        for t in TASKS.values()
        if t.answer.own_queries is None and not _templated(t) and t.instruction in query
    ]
    if len(by_instruction) == 1:
        return by_instruction[0]
    by_identifier = [t.name for t in TASKS.values() if t.identifier and t.identifier in query]
    return by_identifier[0] if len(by_identifier) == 1 else None


def _templated(task: Task) -> bool:
    # Instructions with {placeholders} are recognised by their fixed part (_DIALOGUE_MARKERS).
    return "{" in task.instruction

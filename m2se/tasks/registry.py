"""Adding tasks at run time: ``register_task`` checks that every query still tells its task apart."""

from __future__ import annotations

from m2se.tasks.catalog import TASKS
from m2se.tasks.inference import infer_task
from m2se.tasks.task import Task


def register_task(task: Task, replace: bool = False) -> Task:
    """Add ``task`` to ``TASKS`` (every entry point, reader and metric then knows it).

    TypeError for something that is not a ``Task``; ValueError, leaving ``TASKS`` as it was, when the
    name is taken (``replace=True`` replaces it), or when a query of this or any other task would no
    longer be recognised as its own (``infer_task``: an instruction equal to, contained in or
    containing another's, with a shared identifier).
    """
    if not isinstance(task, Task):
        raise TypeError(f"register_task takes a Task, got {task!r}"[:200])
    if task.name in TASKS and not replace:
        raise ValueError(f"task {task.name!r} exists (pass replace=True to replace it)")
    twin = next(
        (t.name for t in TASKS.values() if t.instruction == task.instruction and t.name != task.name), None
    )
    if twin is not None:
        raise ValueError(
            f"task {task.name!r} has the instruction of task {twin!r}: queries could not tell them apart"
        )
    before = TASKS.get(task.name)
    TASKS[task.name] = task
    lost = [
        t.name for t in TASKS.values() if t.answer.own_queries is None and infer_task(t.query("x")) != t.name
    ]
    if lost:
        if before is None:
            del TASKS[task.name]
        else:
            TASKS[task.name] = before
        raise ValueError(
            f"task {task.name!r}: with its instruction and identifier, queries of {', '.join(lost)} would no "
            "longer be recognised (give it an instruction no other task's contains, nor contains another's)"
        )
    return task


def unregister_task(name: str) -> None:
    """Remove a task added by ``register_task`` (tests use it to leave ``TASKS`` as they found it)."""
    TASKS.pop(name, None)

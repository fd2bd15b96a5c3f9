"""Tasks: each task one object (``Task``) that knows its prompt, answer format, metrics and parse mode.

- ``m2se.tasks.catalog``: the known tasks (``TASKS``) and ``register_task`` for new ones;
- ``m2se.tasks.formats``: answer formats (labels, open labels, phrases, free text, cause pairs);
- ``m2se.tasks.scorers``: the metrics a task can declare; ``m2se.tasks.scoring``: ``TaskMetrics``;
- ``m2se.tasks.inference``: which task a query belongs to.

Answer parsing and the parse modes: ``m2se.parsing``. Parsers never raise: an answer they cannot
read parses to None ("no answer").
"""

from m2se.parsing import ECPE_EMOTIONS, PARSE_MODES, ParseMode, normalize, parse_pairs
from m2se.tasks.baselines import majority, self_cause
from m2se.tasks.catalog import EMOVERSE_TASKS, TASKS, get_task
from m2se.tasks.formats import (
    MAX_OPEN_LABELS,
    AnswerFormat,
    CausePairs,
    FreeText,
    Labels,
    OpenLabels,
    Phrases,
)
from m2se.tasks.inference import infer_task
from m2se.tasks.registry import register_task, unregister_task
from m2se.tasks.scorers import (
    Acc2,
    DialogueMetrics,
    LabelMetrics,
    PairMetrics,
    PhraseMetrics,
    Scorer,
    TextMetrics,
)
from m2se.tasks.scoring import TaskMetrics
from m2se.tasks.task import Task

__all__ = [
    "Acc2",
    "DialogueMetrics",
    "LabelMetrics",
    "PairMetrics",
    "PhraseMetrics",
    "Scorer",
    "TextMetrics",
    "ECPE_EMOTIONS",
    "EMOVERSE_TASKS",
    "MAX_OPEN_LABELS",
    "PARSE_MODES",
    "TASKS",
    "AnswerFormat",
    "CausePairs",
    "FreeText",
    "Labels",
    "OpenLabels",
    "ParseMode",
    "Phrases",
    "Task",
    "TaskMetrics",
    "get_task",
    "infer_task",
    "majority",
    "normalize",
    "parse_pairs",
    "register_task",
    "self_cause",
    "unregister_task",
]

"""Answer formats: what a task's answer looks like, and everything that follows from it.

One class per format: ``Labels`` (a closed label set: msa, mer, erc, ...), ``OpenLabels`` (each
record lists its own labels: InstructERC's dialogue tasks), ``Phrases`` (FER's ``;``-separated
phrases), ``FreeText`` (ERI's reasons) and ``CausePairs`` (ECPE's ``t_emotion,c`` pairs). A format
parses an answer (never raising: an unreadable answer is None), writes one, says why a gold answer is
invalid, names its trivial baselines and its default metrics. Nothing outside ``m2se.tasks`` asks
which format a task has: it asks the task.

Parse modes (``exact``, ``contains``, ...) apply to label formats; see ``m2se.parsing``.
"""

from m2se.tasks.formats.base import AnswerFormat
from m2se.tasks.formats.labels import MAX_OPEN_LABELS, Labels, OpenLabels
from m2se.tasks.formats.pairs import CausePairs
from m2se.tasks.formats.phrases import Phrases
from m2se.tasks.formats.text import FreeText

__all__ = ["MAX_OPEN_LABELS", "AnswerFormat", "CausePairs", "FreeText", "Labels", "OpenLabels", "Phrases"]

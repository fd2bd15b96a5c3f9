"""Task: one task of the multitask mixture, as one object (its prompt, answer format, metrics, parse mode)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from m2se.parsing import REFERENCE_MODES, check_parse_mode, finite_number, integer
from m2se.tasks.formats import AnswerFormat
from m2se.tasks.prediction import Prediction
from m2se.tasks.scorers import Scorer

_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


@dataclass(frozen=True)
class Task:
    """One task: its name, how its queries read, what its answers look like and how they are scored.

    - ``answer``: the answer format (``m2se.tasks.formats``): parsing, writing, gold-answer checks,
      trivial baselines and default metrics.
    - ``instruction``/``identifier``: the query's closing instruction and the task identifier token
      (EmoVerse: ``The person says: '<utterance>' <identifier> <instruction>``); ``template`` replaces
      that layout (``{utterance}`` is filled in).
    - ``metrics``: the scorers the task reports (``m2se.tasks.scorers``); None: the format's.
    - ``default_parse``: the parse mode its answers are read with when a run names none.
    - ``needs_media``: False when records may come without images or videos (text-only ERC).
    - ``max_new_tokens``: the generation budget of one answer.
    - ``utterance_queries``: False when a query is a conversation's prompt (``m2se.dialogue.prompts``)
      even though ``query`` can fill the instruction in: predict.py then needs records with queries.
    """

    name: str
    answer: AnswerFormat
    instruction: str
    identifier: str | None = None
    max_new_tokens: int = 16
    needs_media: bool = True
    template: str | None = None
    metrics: tuple[Scorer, ...] | None = None
    default_parse: str = "exact"
    utterance_queries: bool = True

    def __post_init__(self) -> None:
        """ValueError/TypeError naming the field for a task that could not work (its name becomes file
        names: ``predictions/<name>.jsonl``, ``confusion_<name>.png``)."""
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name) or self.name == "all":
            raise ValueError(f"task name {self.name!r}: letters, digits and _ only (and not 'all')")
        if not isinstance(self.answer, AnswerFormat):
            raise TypeError(
                f"task {self.name}: answer must be an answer format (Labels, ...), got {self.answer!r}"
            )
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise ValueError(f"task {self.name}: the instruction must be a non-empty string")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise TypeError(f"task {self.name}: max_new_tokens must be an int, got {self.max_new_tokens!r}")
        if not 1 <= self.max_new_tokens <= 65536:
            raise ValueError(
                f"task {self.name}: max_new_tokens must be in [1, 65536], got {self.max_new_tokens}"
            )
        if self.metrics is not None and not all(isinstance(m, Scorer) for m in self.metrics):
            raise TypeError(f"task {self.name}: metrics must be a tuple of scorers (m2se.tasks.scorers)")
        if self.template is not None:
            try:
                self.template.format(utterance="")
            except (KeyError, IndexError, ValueError) as err:
                raise ValueError(
                    f"task {self.name}: template may hold only {{utterance}} ({err!r})"
                ) from None
        check_parse_mode(self.default_parse)

    # What tests and reports read of the format.
    @property
    def kind(self) -> str:
        return self.answer.kind

    @property
    def labels(self) -> tuple[str, ...]:
        return self.answer.labels

    @property
    def open_labels(self) -> bool:
        return self.answer.open_labels

    @property
    def reference_modes(self) -> tuple[str, ...]:
        return self.answer.reference_modes

    @property
    def fallback(self) -> str | None:
        return self.answer.fallback

    def scorers(self) -> tuple[Scorer, ...]:
        return self.metrics if self.metrics is not None else self.answer.metrics()

    @property
    def queries_built_by(self) -> str | None:
        """What builds this task's queries when one utterance cannot (None: ``query`` does)."""
        if self.answer.own_queries is not None:
            return self.answer.own_queries
        return None if self.utterance_queries else "m2se.dialogue.prompts (from a conversation)"

    def query(self, utterance: str, quote: str = "'") -> str:
        """The query for one utterance; ValueError for tasks whose queries are built elsewhere."""
        if self.answer.own_queries is not None:
            raise ValueError(f"{self.name} queries are built by {self.answer.own_queries}")
        if self.template is not None:
            return self.template.format(utterance=utterance)
        head = f"The person says: {quote}{utterance}{quote}"
        return " ".join(p for p in (head, self.identifier, self.instruction) if p)

    def parse_mode(self, mode: str | None) -> str:
        """The mode this task's answers are read with under ``parse=mode`` (None: its default); a
        reference mode this task has no published scorer for reads as ``exact``."""
        mode = self.default_parse if mode is None else check_parse_mode(mode)
        return "exact" if mode in REFERENCE_MODES and mode not in self.reference_modes else mode

    def parse(self, text: str, labels: Sequence[str] | None = None, mode: str | None = "exact") -> Any:
        """The answer in ``text``, or None when it cannot be read. Never raises on any text.

        ``labels``: the record's label list for an open-label task (without it, such an answer is only
        normalised). ``mode``: a parse mode (``m2se.parsing``), for label answers.
        """
        if not isinstance(text, str):
            return None
        return self.answer.parse(text, labels, self.parse_mode(mode))

    def gold(self, response: str, mode: str | None = "exact") -> Any:
        """The gold answer of a record's ``response`` as the parse mode's scorer reads it."""
        return self.answer.gold(response, self.parse_mode(mode))

    def substituted(self, text: str, mode: str | None) -> bool:
        """Whether a reference mode answers its fallback label because it could not read ``text``."""
        return self.answer.substituted(text, self.parse_mode(mode))

    def format(self, answer: Any) -> str:
        """The response string for a parsed answer, as the released files write it."""
        return self.answer.format(answer)

    def check_response(self, response: str) -> str | None:
        """Why a gold ``response`` is invalid for this task, or None when it is valid."""
        return self.answer.check_response(self.name, response)

    def check_meta(self, meta: dict) -> str | None:
        """Why a record's metadata cannot be scored, or None.

        ``score`` (msa's source score, for Acc-2) must be a finite number and ``conversation_ID``
        (ECPE's SemEval export) an integer; the answer format adds its own (open labels: ``dataset``,
        ``labels``, ``native``).
        """
        score = meta.get("score")
        if score is not None and not finite_number(score):
            return f"'score' must be a finite number, got {score!r}"
        conversation = meta.get("conversation_ID")
        if conversation is not None and not integer(conversation):
            return f"'conversation_ID' must be an integer, got {conversation!r}"
        return self.answer.check_meta(self.name, meta)

    def baseline(self, name: str, rows: Sequence[Prediction], mode: str | None = None) -> list[str]:
        """Predictions of the trivial baseline ``name`` (one of ``answer.baselines``) for ``rows``,
        written so that the parse ``mode`` (None: the task's default) reads them."""
        return self.answer.baseline(name, rows, self.parse_mode(mode))

"""AnswerFormat: the interface every answer format implements (see ``m2se.tasks.formats``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from m2se.tasks.prediction import Prediction
from m2se.tasks.scorers import Scorer


class AnswerFormat:
    """The common interface; subclasses override what differs. ``kind`` names the format in outputs."""

    kind: ClassVar[str]
    # The label list is each record's own (``meta["labels"]``).
    open_labels: ClassVar[bool] = False
    # Whether the task's queries come from elsewhere (ECPE's template, m2se.dialogue.prompts).
    own_queries: ClassVar[str | None] = None
    # Reason recorded when a record's gold answer is invalid.
    bad_response: ClassVar[str] = "bad response"
    # Whether parse modes (``parse=``) apply to this format's answers.
    reads_parse_modes: ClassVar[bool] = False
    # Whether the run's ECPE protocol (``protocol=``) decides how answers are scored.
    uses_protocol: ClassVar[bool] = False
    # The baselines evaluate.py's baseline=NAME scores this format's tasks with.
    baselines: ClassVar[tuple[str, ...]] = ()
    # The metrics a model is compared with its baselines on (results.md, the table's baseline column):
    # it is above them only when above the best baseline on every one.
    headline: ClassVar[tuple[str, ...]] = ()
    labels: tuple[str, ...] = ()
    fallback: str | None = None
    reference_modes: tuple[str, ...] = ()

    def reading(self, mode: str) -> str:
        """How answers were read, as metrics.json's ``parse`` reports it: the parse mode for formats
        that read with one, else the format's kind."""
        return mode if self.reads_parse_modes else self.kind

    def parse(self, text: str, labels: Sequence[str] | None = None, mode: str = "exact") -> Any:
        raise NotImplementedError

    def format(self, answer: Any) -> str:
        return str(answer)

    def check_response(self, task: str, response: str) -> str | None:
        """Why ``response`` is no valid gold answer of ``task``, or None."""
        return None if response.strip() else f"empty response for task {task}"

    def gold(self, response: str, mode: str) -> Any:
        """The gold answer as the metrics compare it (``mode``: the resolved parse mode)."""
        return self.parse(response)

    def gold_problem(self, task: str, response: str, mode: str) -> str | None:
        """Why the metrics cannot score against ``response`` under ``mode``, or None."""
        return None

    def substituted(self, text: str, mode: str) -> bool:
        """Whether a reference mode answered its fallback label because it could not read ``text``."""
        return False

    def record_labels(self, meta: dict | None) -> Sequence[str] | None:
        """The label list an answer is read against (open labels: the record's own)."""
        return None

    def check_meta(self, task: str, meta: dict) -> str | None:
        """Why a record's metadata cannot be scored under this format, or None."""
        return None

    def check_batch(self, task: str, meta: Sequence[dict] | None) -> None:
        """ValueError when a batch lacks the metadata the metrics read."""

    def check_rows(self, rows: Sequence[Prediction]) -> tuple[str, str] | None:
        """(where, problem) for the first scored row set that cannot be scored together, or None."""
        return None

    def identity(self, response: str) -> str:
        """The gold answer as duplicate detection compares it (``Joy.`` is ``joy``)."""
        return str(self.parse(response))

    def answer_counts(self, response: str) -> list[str]:
        """What ``inspect`` counts for one gold answer."""
        return [str(self.parse(response))]

    def write_outputs(self, task: str, rows: Sequence[Prediction], out_dir: Path) -> list[str]:
        """Write the files beside metrics.json that this format's field expects (none by default);
        returns what a user should read about them (rows they leave out, ...)."""
        return []

    def metrics(self) -> tuple[Scorer, ...]:
        """The metrics a task of this format reports unless it declares its own."""
        raise NotImplementedError

    def baseline(self, name: str, rows: Sequence[Prediction], mode: str = "exact") -> list[str]:
        """Predictions of the trivial baseline ``name`` for ``rows`` (each with ``label``, ``query``,
        ``where``: ``Prediction`` objects). ``majority`` here: the most common gold string. ValueError for
        an unknown name."""
        if name == "majority":
            references = [r.label for r in rows]
            return [Counter(references).most_common(1)[0][0]] * len(references) if references else []
        raise ValueError(f"{self.kind} answers have no {name} baseline")

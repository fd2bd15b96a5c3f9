"""AnswerWriter: predict.py's JSONL, written batch by batch (a stopped run keeps what it answered)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from m2se.files import dumps


class AnswerWriter(BasePredictionWriter):
    """Appends each batch's lines (``M2SEModule.predict_step``) to ``path``, one JSON object per line.

    ``names`` maps a record's ``file:record`` to the name its line gives as ``input`` (the media path
    for media inputs). ``counts`` tallies lines by outcome: ``answered``, ``unparsed`` (an answer the
    task's parser could not read) and ``error``; ``truncated`` counts queries cut to the token budget;
    ``answers`` tallies parsed label answers.
    """

    def __init__(self, path: str | Path, names: Mapping[str, str] | None = None) -> None:
        super().__init__(write_interval="batch")
        self.path, self.names = Path(path), dict(names or {})
        self.counts: Counter = Counter()
        self.answers: Counter = Counter()
        self.truncated = 0
        self.first_error: str | None = None

    def write(self, lines: list[dict]) -> None:
        """Append ``lines`` (also used for inputs refused before the model ran)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            for line in lines:
                line = {**line, "input": self.names.get(line["input"], line["input"])}
                out.write(dumps(line, ensure_ascii=False) + "\n")
                self.truncated += bool(line.get("truncated"))
                if line.get("error") is not None:
                    self.counts["error"] += 1
                    self.first_error = self.first_error or f"{line['input']}: {line['error']}"
                elif line["answer"] is None:
                    self.counts["unparsed"] += 1
                else:
                    self.counts["answered"] += 1
                    if isinstance(line["answer"], str) and "scores" in line:
                        self.answers[line["answer"]] += 1

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ):
        self.write(prediction)

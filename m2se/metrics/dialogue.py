"""Dialogue ERC scores per corpus, in the corpus's native labels (InstructERC's W-F1 per dataset).

Each record says which corpus it comes from and which labels its prompt offered (``meta["dataset"]``,
``meta["labels"]``, ``meta["label_space"]``, ``meta["native"]``; written by ``python -m m2se.sources
dialogue``). An answer is parsed against the prompt's labels; under unified labels it is mapped back to
the corpus's own label (one to one per corpus), so runs trained on unified labels report the same
native-label numbers as the others. A unified label the corpus has no counterpart for is "no answer".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from m2se.dialogue.labels import NATIVE, to_native
from m2se.metrics.classification import LabelScores

REQUIRED = ("dataset", "labels")


def native_answer(parsed: str | None, meta: dict) -> str | None:
    """A parsed answer (a label of the prompt) as the corpus's native label."""
    if parsed is None or meta.get("label_space", "native") == "native":
        return parsed
    return to_native(meta["dataset"], parsed)


class DialogueScores(nn.Module):
    """One ``LabelScores`` per corpus, created when the corpus is first seen.

    ``compute`` gives ``<corpus>/accuracy``, ``<corpus>/f1_weighted``, ``<corpus>/f1_macro`` and
    ``<corpus>/f1_<label>`` per corpus, plus ``accuracy``, ``f1_weighted`` and ``f1_macro`` averaged over
    the corpora (equal to the corpus's own with one corpus). Under DDP the ranks first agree on the
    corpora, so every rank syncs the same metrics in the same order.
    """

    def __init__(self):
        super().__init__()
        self.corpora = nn.ModuleDict()

    def _corpus(self, dataset: str, labels: Sequence[str]) -> LabelScores:
        if dataset not in self.corpora:
            device = next(iter(self.buffers()), torch.empty(0)).device
            self.corpora[dataset] = LabelScores(NATIVE.get(dataset, tuple(labels))).to(device)
        return self.corpora[dataset]

    def update(self, predicted: Sequence[str | None], meta: Sequence[dict]) -> None:
        """``predicted``: answers already parsed against each record's prompt labels."""
        for parsed, m in zip(predicted, meta, strict=True):
            scores = self._corpus(m["dataset"], m["labels"])
            gold = m.get("native")
            if gold not in scores.labels:
                raise ValueError(
                    f"{m['dataset']} record without a valid 'native' gold label ({gold!r}; "
                    f"expected one of {', '.join(scores.labels)})"
                )
            scores.update([native_answer(parsed, m)], [gold])

    def compute(self) -> dict[str, Tensor]:
        self._agree_on_corpora()
        out: dict[str, Tensor] = {}
        for dataset in sorted(self.corpora):
            for key, value in self.corpora[dataset].compute().items():
                out[f"{dataset}/{key}"] = value
        for key in ("accuracy", "f1_weighted", "f1_macro"):
            values = [out[f"{d}/{key}"] for d in sorted(self.corpora) if out[f"{d}/{key}"] is not None]
            if values:
                out[key] = torch.stack(values).mean()
        return out

    def confusion(self) -> tuple[tuple[str, ...], Tensor]:
        if len(self.corpora) != 1:
            raise ValueError(f"a confusion matrix needs one corpus, these scores hold {len(self.corpora)}")
        return next(iter(self.corpora.values())).confusion()

    def _agree_on_corpora(self) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            return
        mine = {name: scores.labels for name, scores in self.corpora.items()}
        gathered: list[dict] = [{} for _ in range(dist.get_world_size())]
        dist.all_gather_object(gathered, mine)
        for part in gathered:
            for name, labels in sorted(part.items()):
                self._corpus(name, labels)

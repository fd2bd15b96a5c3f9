"""The probability of every label under the model, for predict.py's ``scores``.

A label's score is the model's probability of the answer training taught for it: the label text with
the chat template's answer wrapping and end of turn (``M2SEProcessor.answer_ids``), after the prompt.
Two ways to get it, chosen per task by its labels' token ids (``scoring_method``):

- ``first_token``, when every label's answer starts with a different token: the next-token
  distribution after the prompt, read at those first tokens. One forward pass over the prompts.
- ``continuation``, when two labels share their first token (``sad`` / ``sadness``): the prompts'
  forward pass, then one more over every label's answer for every sample at once, on the prompts'
  key/value cache (repeated per label, so the media are encoded once); a label's score is the sum
  of its answer tokens' log-probabilities.

Either way the scores are renormalised over the task's labels (softmax of the log-probabilities), so
they sum to 1 per sample: they are the model's choice among the labels, not the probability that it
writes one of them at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

Method = Literal["first_token", "continuation"]


def scoring_method(answers: Sequence[Sequence[int]]) -> Method:
    """``first_token`` when the answers' first token ids all differ, ``continuation`` otherwise.

    ValueError for fewer than two answers or an empty one (there is nothing to choose between)."""
    if len(answers) < 2 or any(len(a) == 0 for a in answers):
        raise ValueError("label scores need at least two labels, each with a non-empty answer")
    return "first_token" if len({a[0] for a in answers}) == len(answers) else "continuation"


def _positions(model: nn.Module, input_ids: torch.Tensor, mask: torch.Tensor, vision: dict) -> torch.Tensor:
    # As generate() numbers a left-padded batch, through the model's own hook: positions count real
    # tokens only, and a family with multimodal rotary positions (Qwen-VL's 3-D ones) places its
    # pictures there, giving (rows, B, T) instead of (B, T).
    kwargs = {"input_ids": input_ids, "attention_mask": mask, **vision}
    return model._prepare_position_ids_for_generation(input_ids, kwargs)


@torch.no_grad()
def label_probabilities(
    model: nn.Module,
    batch: dict,
    answers: Sequence[Sequence[int]],
    vision: dict[str, torch.Tensor],
    placed: contextlib.AbstractContextManager | None = None,
    method: Method | None = None,
) -> tuple[torch.Tensor, Method]:
    """(B, L) float32 probabilities of the L ``answers`` (token ids) after each of the B prompts.

    ``batch``: left-padded prompts as the generation loader collates them (``input_ids``,
    ``attention_mask`` (B, T)); ``vision``: its visual inputs as the model takes them
    (``M2SEProcessor.model_inputs``; none for text); ``placed``: the context that puts the batch's
    audio/feature tokens into the input embedding (``M2SEModule.placed``), entered for the prompts only.
    ``method``: None picks ``scoring_method(answers)``; ``continuation`` is exact for any labels.
    """
    method = method or scoring_method(answers)
    mask = batch["attention_mask"]
    positions = _positions(model, batch["input_ids"], mask, vision)
    with placed or contextlib.nullcontext():
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=mask,
            position_ids=positions,
            use_cache=method == "continuation",
            **vision,
        )
    first = out.logits[:, -1].float().log_softmax(-1)  # (B, V): the answer's first token
    first_ids = torch.tensor([a[0] for a in answers], device=first.device)
    if method == "first_token":
        return first[:, first_ids].softmax(-1), method
    samples, labels = len(mask), len(answers)
    width = max(len(a) for a in answers) - 1  # the last token is only scored, never fed
    totals = first[:, first_ids].clone()  # (B, L) log-probabilities, tokens added below
    if width:
        fed = torch.zeros(labels, width, dtype=torch.long, device=mask.device)
        fed_mask = torch.zeros(labels, width, dtype=mask.dtype, device=mask.device)
        for i, answer in enumerate(answers):
            fed[i, : len(answer) - 1] = torch.tensor(answer[:-1], device=mask.device)
            fed_mask[i, : len(answer) - 1] = 1
        cache = out.cache
        cache.batch_repeat_interleave(labels)
        steps = torch.arange(1, width + 1, device=mask.device)
        logits = model(
            input_ids=fed.repeat(samples, 1),
            attention_mask=torch.cat([mask.repeat_interleave(labels, 0), fed_mask.repeat(samples, 1)], 1),
            position_ids=positions[..., -1:].repeat_interleave(labels, -2) + steps,
            cache=cache,
        ).logits
        logprobs = logits.float().log_softmax(-1).view(samples, labels, width, -1)
        for i, answer in enumerate(answers):
            targets = torch.tensor(answer[1:], device=logprobs.device)
            steps_i = torch.arange(len(targets), device=logprobs.device)
            totals[:, i] += logprobs[:, i, steps_i, targets].sum(-1)
    return totals.softmax(-1), method

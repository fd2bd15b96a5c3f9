"""Label probabilities: the cached continuation pass equals scoring each label's answer alone."""

import numpy as np
import pytest
import torch

from m2se.data import internvl
from m2se.model.internvl import load_base
from m2se.model.label_scores import label_probabilities, scoring_method
from m2se.tasks import TASKS


@pytest.fixture(scope="module")
def setup(tiny_model_dir):
    processor = internvl.from_pretrained(tiny_model_dir)
    rng = np.random.default_rng(0)
    samples = [  # different lengths: left padding must not move the scores
        processor(TASKS["erc"].query("I see."), videos=[rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)]),
        processor(TASKS["erc"].query("What a long day it has been."), videos=[rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)]),
    ]  # fmt: skip
    batch = processor.collate(samples, padding_side="left")
    model = load_base(tiny_model_dir).eval()
    answers = [processor.answer_ids(TASKS["erc"].format(label)) for label in TASKS["erc"].labels]
    return model, samples, batch, answers, processor.model_inputs(batch)


def alone(model, sample, answers) -> torch.Tensor:
    """Each label's answer appended to the unpadded prompt, one forward pass per label."""
    totals = []
    with torch.no_grad():
        for answer in answers:
            ids = torch.cat([sample.input_ids, torch.tensor(answer)])[None]
            logits = model(input_ids=ids, pixel_values=sample.pixel_values).logits[0].float()
            logprobs = logits.log_softmax(-1)
            start = len(sample.input_ids) - 1
            totals.append(sum(logprobs[start + j, token] for j, token in enumerate(answer)))
    return torch.stack(totals).softmax(-1)


def test_continuation_scores_equal_each_answer_scored_alone(setup):
    model, samples, batch, answers, vision = setup
    probabilities, method = label_probabilities(model, batch, answers, vision, method="continuation")
    assert method == "continuation" and probabilities.shape == (2, len(answers))
    for row, sample in zip(probabilities, samples, strict=True):
        torch.testing.assert_close(row, alone(model, sample, answers), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2))


def test_first_token_scores_are_the_first_generated_step(setup):
    model, samples, batch, answers, vision = setup
    probabilities, method = label_probabilities(model, batch, answers, vision, method="first_token")
    out = model.generate(**{k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")},
                         max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True)  # fmt: skip
    first = out.logits[0].float().log_softmax(-1)[:, [a[0] for a in answers]].softmax(-1)
    torch.testing.assert_close(probabilities, first, atol=1e-5, rtol=1e-4)


def test_the_method_follows_the_first_tokens():
    assert scoring_method([[1, 2], [3, 2]]) == "first_token"
    assert scoring_method([[1, 2], [1, 3]]) == "continuation"
    with pytest.raises(ValueError, match="at least two labels"):
        scoring_method([[1]])

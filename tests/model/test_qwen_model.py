"""Qwen-VL's model side: found, loaded frozen, LoRA on its language model and merger, QLoRA, and
predict's label scores placed on Qwen's 3-D rotary positions as generation places them."""

import numpy as np
import pytest
import torch
from torch import nn

from m2se.data import qwen_vl
from m2se.model.backbone import LoadSettings
from m2se.model.label_scores import label_probabilities
from m2se.model.lora import LoraSettings, add_lora, trainable_parameters
from m2se.model.qwen_vl import PARTS, QwenVL
from m2se.tasks import TASKS


@pytest.fixture
def base(tiny_qwen_dir):
    return QwenVL(str(tiny_qwen_dir)).resolved().load()


def test_default_lora_adapts_every_linear_of_the_language_model_and_merger_only(base):
    adapted = {
        n: m
        for n, m in base.named_modules()
        if isinstance(m, nn.Linear) and n.startswith(("model.language_model.", "model.visual.merger."))
    }
    assert {"model.visual.merger.mlp.0", "model.visual.merger.mlp.2"} <= set(adapted)
    model = add_lora(base, LoraSettings(), PARTS)
    assert trainable_parameters(model) == sum(8 * (m.in_features + m.out_features) for m in adapted.values())
    wrapped = {n.removeprefix("base_model.model.") for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == set(adapted)  # no decoder layer or vision block taken for a merger's "0"/"2"
    only_llm = add_lora(QwenVL(base.name_or_path).load(), LoraSettings(parts=["language_model"]), PARTS)
    assert not any("visual" in n for n, p in only_llm.named_parameters() if p.requires_grad)


def test_a_folder_of_another_family_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a Qwen2-VL or Qwen2.5-VL model directory"):
        QwenVL(str(tiny_model_dir)).resolved()
    with pytest.raises(FileNotFoundError, match="no such directory"):
        QwenVL(str(tmp_path / "missing")).resolved()


def test_qlora_quantizes_only_the_language_model(tiny_qwen_dir):
    import bitsandbytes as bnb

    model = QwenVL(str(tiny_qwen_dir)).load(LoadSettings(quantization="4bit"))
    assert isinstance(model.model.language_model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in model.model.visual.modules())
    assert type(model.lm_head) is nn.Linear


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen2_vl"])
def family(request, tiny_qwen_dir, tiny_qwen2_vl_dir):
    """(base model, its processor) of each version: Qwen2-VL's positions take no frame rate."""
    folder = tiny_qwen_dir if request.param == "qwen2_5_vl" else tiny_qwen2_vl_dir
    return QwenVL(str(folder)).resolved().load(), qwen_vl.from_pretrained(folder, frame_size=56)


@pytest.fixture(scope="module")
def prompts(family):
    base, processor = family
    rng = np.random.default_rng(0)
    samples = [  # different lengths, a clip and an image: left padding must not move the positions
        processor(TASKS["erc"].query("I see."), videos=[rng.integers(0, 255, (4, 56, 56, 3), dtype=np.uint8)]),
        processor(TASKS["erc"].query("What a long day it has been."), images=[rng.integers(0, 255, (1, 56, 56, 3), dtype=np.uint8)]),
    ]  # fmt: skip
    answers = [processor.answer_ids(TASKS["erc"].format(label)) for label in TASKS["erc"].labels]
    return base, processor, samples, answers


def test_first_token_scores_are_the_first_generated_step(prompts):
    base, processor, samples, answers = prompts
    batch = processor.collate(samples, padding_side="left")
    vision = processor.model_inputs(batch)
    probabilities, _ = label_probabilities(base, batch, answers, vision, method="first_token")
    out = base.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **vision,
                        max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True)  # fmt: skip
    first = out.logits[0].float().log_softmax(-1)[:, [a[0] for a in answers]].softmax(-1)
    torch.testing.assert_close(probabilities, first, atol=1e-5, rtol=1e-4)
    timed = "second_per_grid_ts" in processor.model_inputs(batch)  # Qwen2.5-VL's only
    assert timed == hasattr(base.config.vision_config, "tokens_per_second")


def test_continuation_scores_equal_each_answer_scored_alone(prompts):
    base, processor, samples, answers = prompts
    batch = processor.collate(samples, padding_side="left")
    probabilities, _ = label_probabilities(
        base, batch, answers, processor.model_inputs(batch), method="continuation"
    )
    for row, sample in zip(probabilities, samples, strict=True):
        totals = []
        with torch.no_grad():
            for answer in answers:
                ids = torch.cat([sample.input_ids, torch.tensor(answer)])[None]
                vision = processor.model_inputs({**sample.vision_inputs, "input_ids": ids})
                logprobs = base(input_ids=ids, **vision).logits[0].float().log_softmax(-1)
                start = len(sample.input_ids) - 1
                totals.append(sum(logprobs[start + j, token] for j, token in enumerate(answer)))
        torch.testing.assert_close(row, torch.stack(totals).softmax(-1), atol=1e-5, rtol=1e-4)

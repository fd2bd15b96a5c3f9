import math

import pytest

from m2se.data import internvl
from m2se.model.internvl import InternVL
from m2se.model.module import M2SEModule
from m2se.model.optim import warmup_cosine


def test_warmup_then_cosine_then_flat():
    factor = warmup_cosine(total=100, warmup_ratio=0.05, min_ratio=0.1)
    assert [round(factor(s), 3) for s in range(5)] == [round((s + 1) / 6, 3) for s in range(5)]
    assert factor(5) == pytest.approx(1.0)
    assert factor(52) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 47 / 95)))
    assert factor(100) == pytest.approx(0.1) and factor(500) == pytest.approx(0.1)  # never climbs back


def test_new_lora_merges_the_old_one(tiny_model_dir):
    module = M2SEModule(
        InternVL(str(tiny_model_dir)), internvl.from_pretrained(tiny_model_dir), lora={"r": 4}
    )
    before = {n for n, p in module.named_parameters() if p.requires_grad}
    module.start_new_lora()
    assert module.stage == 2 and len(module.merged) == 1 and module.merged[0].config["r"] == 4
    assert {
        n for n, p in module.named_parameters() if p.requires_grad
    } == before  # same targets, fresh weights
    assert all(not p.requires_grad for n, p in module.named_parameters() if ".lora_" not in n)


def test_checkpoint_holds_only_what_trains(tiny_model_dir):
    module = M2SEModule(InternVL(str(tiny_model_dir)), internvl.from_pretrained(tiny_model_dir))
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert len(checkpoint["state_dict"]) == 32 and all(".lora_" in k for k in checkpoint["state_dict"])
    assert checkpoint["m2se"]["lora_config"]["r"] == 8 and checkpoint["m2se"]["merged"] == []
    with pytest.raises(ValueError, match="not an m2se checkpoint"):
        module.on_load_checkpoint({"state_dict": {}})


def test_uint8_batches_give_the_float_batches_loss_answers_and_scores(tiny_model_dir):
    """data.processor.pixels=uint8: the module normalises the bytes itself, to the same loss and answers."""
    import numpy as np
    import torch

    tiles = np.random.default_rng(0).integers(0, 256, (2, 56, 56, 3), dtype=np.uint8)
    as_float = internvl.from_pretrained(tiny_model_dir)
    as_bytes = internvl.from_pretrained(tiny_model_dir, pixels="uint8")
    module = M2SEModule(InternVL(str(tiny_model_dir)), as_float).eval()
    batches = {}
    for name, processor in (("float", as_float), ("bytes", as_bytes)):
        sample = processor("What is shown?", "Joy", videos=[tiles])
        batches[name] = processor.collate([sample])
    assert batches["bytes"]["pixel_values"].dtype == torch.uint8
    assert batches["bytes"]["pixel_values"].shape == batches["float"]["pixel_values"].shape == (2, 3, 56, 56)
    torch.testing.assert_close(
        as_bytes.model_inputs(batches["bytes"])["pixel_values"], batches["float"]["pixel_values"]
    )
    with torch.no_grad():
        losses = [module(batches[name]).item() for name in ("float", "bytes")]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    prompts = {}
    for name, processor in (("float", as_float), ("bytes", as_bytes)):
        prompts[name] = processor.collate([processor("What is shown?", videos=[tiles])], padding_side="left")
    answers = [module.generate_answers(prompts[name], "erc", max_new_tokens=4) for name in ("float", "bytes")]
    assert answers[0] == answers[1]

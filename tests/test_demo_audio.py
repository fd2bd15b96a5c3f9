"""Issue #7: on the demo's mer2023 clips, whose label only the sound carries, hearing beats not hearing.

Two runs alike in all but ``model.audio`` (same seed, records, batch order, LoRA and optimizer) train
with a plain loop, as fast as the tiny model allows, then answer the held-out clips greedily. The
frames are the same grey picture for every label, so the run without audio can only guess.
"""

import pytest
import torch

from m2se.data import internvl
from m2se.data.dataset import Collator, EncodedDataset
from m2se.data.records import load_records
from m2se.data.video import MediaLoader
from m2se.model.internvl import InternVL
from m2se.model.module import M2SEModule
from m2se.model.tiny import build_tiny_audio_encoder
from m2se.tasks import TASKS

BATCH = 8
# 5e-3, as the demo: at 2e-3 the six labels need about twice the steps (docs/PROTOCOL.md §11: the
# loss settles on the label prior first, and only then do the answers follow the sound).
OPTIMIZER = {"lr": 5e-3}


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return build_tiny_audio_encoder(tmp_path_factory.mktemp("hubert") / "tiny-hubert")


def accuracy_after_training(model_dir, demo_dir, audio: dict | None, labels, steps: int, seed: int) -> float:
    """Train on the mer2023 records of ``labels``; greedy accuracy on the test clips of those labels."""
    train, test = (
        [r for r in load_records(demo_dir / name, media_root=demo_dir).records if r.response in labels]
        for name in ("audio_stage.json", "test/mer2023.json")
    )
    processor = internvl.from_pretrained(model_dir, audio=audio)
    media = MediaLoader(num_frames=1, tile_size=processor.tile_size, max_tiles=1)  # the frames say nothing
    samples, prompts = (
        [dataset[i] for i in range(len(dataset))]
        for dataset in (
            EncodedDataset(train, processor, media, on_media_error="raise"),
            EncodedDataset(test, processor, media, on_media_error="raise", generation=True),
        )
    )
    assert not any(sample.dropped for _, sample in samples + prompts)  # every clip was heard
    torch.manual_seed(seed)
    module = M2SEModule(InternVL(str(model_dir)), processor, optimizer=OPTIMIZER)
    module.schedule_window = (0, steps)  # warmup + cosine over this run, as the Trainer would set it
    optimizers = module.configure_optimizers()
    optimizer, schedule = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    params = [p for p in module.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(seed)  # the same batches, in the same order, for both runs
    epochs = steps * BATCH // len(samples) + 1
    order = torch.cat([torch.randperm(len(samples), generator=generator) for _ in range(epochs)])
    collate = Collator(processor)
    for step in range(steps):
        loss = module(collate([samples[i] for i in order[step * BATCH : (step + 1) * BATCH].tolist()]))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)  # trainer.gradient_clip_val
        optimizer.step()
        schedule.step()
    task, collate, correct = TASKS["mer2023"], Collator(processor, "left"), 0
    for start in range(0, len(prompts), BATCH):
        batch = collate(prompts[start : start + BATCH])
        answers = module.generate_answers(batch, "mer2023")
        correct += sum(
            task.parse(answer) == task.parse(record.response)
            for record, answer in zip(batch["records"], answers, strict=True)
        )
    return correct / len(prompts)


def runs(model_dir, demo_dir, encoder, labels, steps: int, seed: int) -> tuple[float, float]:
    """(accuracy with audio, accuracy without): the tiny HuBERT frozen, its projector trained."""
    audio = {"encoder": str(encoder), "tokens": 8, "tasks": ["mer2023"], "max_seconds": 2.0}  # a 2-s clip
    heard = accuracy_after_training(model_dir, demo_dir, audio, labels, steps, seed)
    return heard, accuracy_after_training(model_dir, demo_dir, None, labels, steps, seed)


def test_hearing_tells_apart_two_pitches_the_frames_do_not(tiny_model_dir, demo_dir, encoder):
    # angry (311 Hz) and worried (880 Hz): 95 training records, 8 test clips each, so one repeated
    # guess scores 0.5. Over seeds 0-5: with audio 1.0 each time, without 0.44-0.56.
    heard, unheard = runs(tiny_model_dir, demo_dir, encoder, ("angry", "worried"), steps=40, seed=0)
    assert heard >= 0.85 and heard >= unheard + 0.25, (heard, unheard)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hearing_beats_not_hearing_on_all_six_labels(tiny_model_dir, demo_dir, encoder, seed):
    # Chance 1/6; the commonest test labels hold 8 of 40 clips, so one repeated guess scores <= 0.2.
    # Over seeds 0-11: with audio 0.95-1.0 in nine, 0.58-0.78 in three (some adjacent pitches still
    # confused), without 0.05-0.18. Seeds 0-2 scored 0.95, 1.0, 1.0 against 0.18, 0.18, 0.15.
    labels = TASKS["mer2023"].labels
    heard, unheard = runs(tiny_model_dir, demo_dir, encoder, labels, steps=75, seed=seed)
    assert heard >= 0.5 and heard >= unheard + 0.3, (heard, unheard)

"""Hearing on the model side: where the tokens land, forward = generation, training, saving and loading."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoFeatureExtractor, AutoModel

from m2se.audio_settings import AudioSettings
from m2se.data import internvl
from m2se.data.dataset import prompts_of
from m2se.model.audio import CONFIG, WEIGHTS, AudioTower, evaluated_settings, pool, read_saved, saved_settings
from m2se.model.internvl import InternVL
from m2se.model.module import M2SEModule
from m2se.model.tiny import build_tiny_audio_encoder

QUERY = "The person says: 'hi'"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    encoder = build_tiny_audio_encoder(tmp_path_factory.mktemp("hubert") / "tiny-hubert")
    return {"encoder": str(encoder), "tokens": 4, "features": {"face": {"dim": 6, "tokens": 2}}}


@pytest.fixture(scope="module")
def processor(tiny_model_dir, settings):
    return internvl.from_pretrained(tiny_model_dir, audio=settings)


def built(tiny_model_dir, audio=None, **kwargs) -> M2SEModule:
    """The module on the tiny InternVL, its processor hearing as ``audio`` says."""
    processor = internvl.from_pretrained(tiny_model_dir, audio=audio)
    return M2SEModule(InternVL(str(tiny_model_dir)), processor, **kwargs)


def sound(seed: int, seconds: float = 0.4) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(16_000 * seconds)).astype(np.float32)


def samples(processor, answers=("Positive.", "Negative."), seed: int = 0):
    """One sample that hears and sees its face features, one that has neither (a shorter prompt)."""
    frames = np.random.default_rng(seed).integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)
    face = np.random.default_rng(seed).standard_normal((3, 6)).astype(np.float32)
    return [
        processor(QUERY, answers[0], videos=[frames], audio=sound(seed), features={"face": face}),
        processor("Hi.", answers[1]),
    ]


def perturbed(module: M2SEModule, seed: int, encoder: bool = False) -> M2SEModule:
    """As if trained: LoRA B no longer zero, projectors (and the encoder) moved."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.requires_grad and (encoder or ".encoder." not in name):
                p.add_(torch.randn(p.shape, generator=generator) * 0.1)
    return module.eval()


def logits(module: M2SEModule, batch: dict) -> torch.Tensor:
    with torch.no_grad(), module.placed(batch):
        return module.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"],
        ).logits


@pytest.fixture(scope="module")
def module(tiny_model_dir, settings):
    return perturbed(built(tiny_model_dir, settings), seed=0)


def first_embeds(module: M2SEModule, run) -> torch.Tensor:
    """The input embeddings the language model gets on its first call within ``run()``."""
    seen = []
    language_model = module.model.get_base_model().model.language_model
    handle = language_model.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(kwargs["inputs_embeds"].detach()), with_kwargs=True
    )
    try:
        run()
    finally:
        handle.remove()
    return seen[0]


def test_projected_tokens_land_exactly_at_the_placeholders(module, processor):
    batch = processor.collate(samples(processor))
    embeds = first_embeds(module, lambda: logits(module, batch))
    plain = module.model.get_input_embeddings()(batch["input_ids"]).detach()
    audio, face = batch["audio_mask"], batch["feature_masks"]["face"]
    with torch.no_grad():
        torch.testing.assert_close(embeds[audio], module.extra_tokens.audio(batch["audio_values"]))
        torch.testing.assert_close(
            embeds[face], module.extra_tokens.features["face"](batch["feature_values"]["face"])
        )
    untouched = (batch["input_ids"] != processor.vision.image_token_id) & ~audio & ~face
    assert torch.equal(embeds[untouched], plain[untouched])
    assert not torch.allclose(embeds[audio], plain[audio])  # the pad fillers did not survive
    assert len(module.model.get_input_embeddings()._forward_hooks) == 0  # the hook left with the call


def test_generation_places_the_tokens_as_training_does(module, processor):
    train = processor.collate(samples(processor))
    batch = prompts_of(train, processor.tokenizer.pad_token_id)  # left-padded prompts, as validation does
    lengths = batch["attention_mask"].sum(1)
    trained = first_embeds(module, lambda: logits(module, train))
    generated = first_embeds(module, lambda: module.generate_answers(batch, "mer2023", max_new_tokens=2))
    for row, length in enumerate(lengths.tolist()):  # the prompt's embeddings, token for token
        torch.testing.assert_close(generated[row, -length:], trained[row, :length])
    with torch.no_grad(), module.placed(batch):
        out = module.model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"],
            max_new_tokens=3,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=processor.tokenizer.pad_token_id,
        )
    # Generation's first step predicts what the training forward predicts after the prompt.
    after_prompt = logits(module, train)[torch.arange(2), lengths - 1]
    torch.testing.assert_close(out.logits[0], after_prompt, atol=1e-4, rtol=1e-4)


def test_the_sound_and_the_features_reach_the_model(module, processor):
    batch = processor.collate(samples(processor), padding_side="left")
    reference = logits(module, batch)[:, -1]
    louder = {**batch, "audio_values": [v * 0 + torch.randn(len(v)) for v in batch["audio_values"]]}
    other_face = {**batch, "feature_values": {"face": [v + 1 for v in batch["feature_values"]["face"]]}}
    for changed in (louder, other_face):
        moved = logits(module, changed)[:, -1]
        assert not torch.allclose(moved[0], reference[0], atol=1e-3)  # the sample that hears changes
        torch.testing.assert_close(moved[1], reference[1])  # the one without placeholders does not


def test_a_training_step_trains_the_projectors_through_the_lora(tiny_model_dir, settings, processor):
    module = built(tiny_model_dir, settings, lora={"r": 4})
    lora = sum(p.numel() for n, p in module.named_parameters() if p.requires_grad and ".lora_" in n)
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == lora + (32 * 64 + 64) + (
        6 * 64 + 64
    )
    batch = processor.collate(samples(processor))
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = module(batch)
        loss.backward()
        losses.append(loss.item())
        if len(losses) == 1:
            projector = module.extra_tokens.audio.projector.weight.grad
            assert projector is not None and projector.abs().sum() > 0
            assert module.extra_tokens.features["face"].projector.weight.grad.abs().sum() > 0
            assert all(p.grad is None for p in module.extra_tokens.audio.encoder.parameters())  # frozen
        optimizer.step()
    assert losses[-1] < losses[0]
    # A batch without placeholders still gives the projectors a (zero) gradient, as DDP needs.
    optimizer.zero_grad()
    module(processor.collate([processor("Hi.", "Negative.")])).backward()
    assert torch.equal(module.extra_tokens.audio.projector.weight.grad, torch.zeros(64, 32))


def test_projectors_round_trip_through_the_adapter_folder(module, tiny_model_dir, processor, tmp_path):
    folder = module.save_adapter(tmp_path / "adapter")
    assert (folder / WEIGHTS).is_file() and (folder / CONFIG).is_file()
    assert saved_settings(folder)["tokens"] == 4 and saved_settings(folder)["features"]["face"]["dim"] == 6
    assert not any(
        ".encoder." in k for k in read_saved(folder)[1]
    )  # frozen: the encoder's own path reloads it
    # Evaluation's settings come from the folder.
    loaded = built(
        tiny_model_dir, evaluated_settings(AudioSettings(), str(folder)), init_from=str(folder)
    ).eval()
    assert loaded.extra_tokens.settings == module.extra_tokens.settings
    for name, p in module.extra_tokens.named_parameters():
        assert torch.equal(dict(loaded.extra_tokens.named_parameters())[name], p), name
    batch = processor.collate(samples(processor), padding_side="left")
    torch.testing.assert_close(logits(loaded, batch), logits(module, batch), atol=1e-4, rtol=1e-4)
    with pytest.raises(
        ValueError, match="trained with audio or feature tokens .* but model.audio is disabled"
    ):
        built(tiny_model_dir, {"encoder": None}, init_from=str(folder))


def test_a_trained_encoder_is_saved_and_reloaded_too(tiny_model_dir, settings, processor, tmp_path):
    module = perturbed(built(tiny_model_dir, {**settings, "freeze_encoder": False}), 1, encoder=True)
    folder = module.save_adapter(tmp_path / "adapter")
    assert any(k.startswith("audio.encoder.") for k in read_saved(folder)[1])
    loaded = built(tiny_model_dir, saved_settings(folder), init_from=str(folder)).eval()
    encoder = dict(loaded.extra_tokens.audio.encoder.named_parameters())
    for name, p in module.extra_tokens.audio.encoder.named_parameters():
        assert torch.equal(encoder[name], p), name
    batch = processor.collate(samples(processor), padding_side="left")
    torch.testing.assert_close(logits(loaded, batch), logits(module, batch), atol=1e-4, rtol=1e-4)


def test_checkpoints_keep_the_projectors_and_stage_two_starts_from_them(
    module, tiny_model_dir, settings, tmp_path
):
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    kept = {k for k in checkpoint["state_dict"] if k.startswith("extra_tokens.")}
    assert kept == {
        f"extra_tokens.{k}"
        for k in (
            "audio.projector.weight",
            "audio.projector.bias",
            "features.face.projector.weight",
            "features.face.projector.bias",
        )
    }
    assert checkpoint["m2se"]["audio"]["encoder"] == settings["encoder"]
    torch.save(checkpoint, tmp_path / "last.ckpt")
    second = built(tiny_model_dir, settings, init_from=str(tmp_path / "last.ckpt"))
    assert torch.equal(second.extra_tokens.audio.projector.weight, module.extra_tokens.audio.projector.weight)
    assert second.extra_tokens.audio.projector.weight.requires_grad  # keeps training in stage two
    with pytest.raises(ValueError, match="audio weights do not fit model.audio"):
        built(tiny_model_dir, {**settings, "features": {}}, init_from=str(tmp_path / "last.ckpt"))


def test_a_model_without_audio_refuses_placeholders(tiny_model_dir, processor):
    plain = built(tiny_model_dir)
    assert plain.extra_tokens is None
    with pytest.raises(ValueError, match="placeholders but the model has no model.audio"):
        plain(processor.collate(samples(processor)))


def test_pooling_averages_equal_spans_of_time():
    frames = torch.arange(12.0).reshape(6, 2)
    assert torch.equal(pool(frames, 3), torch.tensor([[1.0, 2.0], [5.0, 6.0], [9.0, 10.0]]))
    assert pool(frames[:1], 4).shape == (4, 2)  # a clip shorter than the tokens repeats its frames


def test_an_adapter_trained_with_audio_refuses_a_processor_without_it(
    module, tiny_model_dir, settings, tmp_path
):
    folder = str(module.save_adapter(tmp_path / "adapter"))
    # The module takes what it hears from its processor: one without placeholders cannot carry the adapter.
    with pytest.raises(ValueError, match=r"trained with audio .* \(the processor writes no placeholders\)"):
        built(tiny_model_dir, None, init_from=folder)
    # Evaluation's processor hears as the folder says, whether model.audio is unset or asks for the same
    # placeholders, and refuses others: their projectors never trained.
    assert evaluated_settings(AudioSettings(), folder) == AudioSettings.of(settings)
    assert evaluated_settings(AudioSettings.of({**settings, "encoder": "x"}), folder) == AudioSettings.of(
        settings
    )
    with pytest.raises(
        ValueError, match=r"asks for audio or feature tokens that .*adapter was not trained with"
    ):
        evaluated_settings(AudioSettings.of({**settings, "tokens": 5}), folder)
    with pytest.raises(ValueError, match="the base model was not trained with"):
        evaluated_settings(AudioSettings.of(settings), None)
    assert evaluated_settings(AudioSettings(), None) == AudioSettings()


@pytest.mark.parametrize("freeze", [True, False])
def test_clips_shorter_than_a_frame_are_padded_not_refused(settings, freeze):
    tower = AudioTower(settings["encoder"], tokens=4, hidden_size=64, freeze=freeze).train()
    # 50 samples: under one frame's receptive field, and far under what SpecAugment masks in training.
    assert tower([torch.randn(50), torch.randn(16_000)]).shape == (8, 64)


def test_the_tiny_speech_encoder_loads_with_the_auto_classes_and_is_reproducible(settings, tmp_path):
    again = build_tiny_audio_encoder(tmp_path / "again")
    assert AutoFeatureExtractor.from_pretrained(again).sampling_rate == 16_000
    assert type(AutoModel.from_pretrained(again)).__name__ == "HubertModel"
    first, second = (
        load_file(f"{settings['encoder']}/model.safetensors"),
        load_file(again / "model.safetensors"),
    )
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)

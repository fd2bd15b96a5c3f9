"""Audio and feature tokens in the LLM's prompt, the Emotion-LLaMA way.

A speech encoder (HuBERT / wav2vec2 family, frozen by default) hears the clip; its frames are pooled
to ``tokens`` vectors and a trainable Linear maps them into the LLM's embedding space. Each
pre-extracted feature view gets its own pooling and Linear. The projected tokens replace the
placeholder embeddings the processor marked (``audio_mask``, ``feature_masks``) through a forward hook
on the LLM's input embedding, so ``model(...)`` and the prefill step of ``model.generate(...)`` place
them identically; decode steps (one new token) pass untouched.

The adapter folder carries them: ``audio.safetensors`` (what trained: the projectors, and the encoder
when it was unfrozen) and ``audio_config.json`` (``AudioSettings``, the encoder's path included).
"""

from __future__ import annotations

import contextlib
import inspect
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from m2se.audio_settings import AudioSettings
from m2se.files import dumps
from m2se.model.checkpoints import read_json_object, read_m2se_checkpoint, read_safetensors

WEIGHTS, CONFIG = "audio.safetensors", "audio_config.json"


def pool(frames: torch.Tensor, tokens: int) -> torch.Tensor:
    """(T, D) → (tokens, D): mean over equal spans of time (spans repeat frames when T < tokens)."""
    return F.adaptive_avg_pool1d(frames.T[None], tokens)[0].T


class AudioTower(nn.Module):
    """Speech encoder → ``tokens`` pooled frames → Linear into the LLM's embedding width."""

    def __init__(
        self,
        encoder: str,
        tokens: int,
        hidden_size: int,
        freeze: bool = True,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        from transformers import AutoModel

        try:
            # A trained encoder stays fp32 like the projectors; a frozen one runs in the LLM's dtype.
            self.encoder = AutoModel.from_pretrained(encoder, dtype=dtype if freeze else torch.float32)
        except (OSError, ValueError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise OSError(
                f"model.audio.encoder {encoder!r}: cannot load a speech encoder ({reason})"
            ) from None
        if "input_values" not in inspect.signature(self.encoder.forward).parameters:
            raise ValueError(
                f"model.audio.encoder {encoder!r}: {type(self.encoder).__name__} does not take waveforms "
                "(expected the HuBERT / wav2vec2 family)"
            )
        self.freeze, self.tokens = freeze, tokens
        self.encoder.requires_grad_(not freeze)
        self.encoder.train()  # from_pretrained leaves it in eval mode; forward keeps a frozen one in eval
        self.projector = nn.Linear(self.encoder.config.hidden_size, hidden_size)
        self.min_samples = _min_samples(self.encoder.config, trained=not freeze)

    def forward(self, waveforms: list[torch.Tensor]) -> torch.Tensor:
        """One waveform per placeholder, in batch order → (len × tokens, hidden) projected tokens.

        Clips are encoded one at a time: no padding, so a clip's tokens do not depend on its batch.
        """
        pooled = []
        dtype = next(self.encoder.parameters()).dtype
        training = self.encoder.training
        if self.freeze:  # no dropout or SpecAugment masking in a frozen encoder
            self.encoder.eval()
        try:
            for wave in waveforms:
                wave = F.pad(wave, (0, max(0, self.min_samples - len(wave))))  # shorter than one frame
                with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
                    frames = self.encoder(input_values=wave[None].to(dtype)).last_hidden_state[0]
                pooled.append(pool(frames.float(), self.tokens))
        finally:
            self.encoder.train(training)
        return self.projector(torch.cat(pooled).to(self.projector.weight.dtype))


def _min_samples(config, trained: bool) -> int:
    """Samples the encoder needs: one frame's receptive field (400 for HuBERT and wav2vec2), and a
    training encoder's SpecAugment needs more frames than ``mask_time_length``; shorter clips are padded."""
    field, hop = 1, 1
    kernels, strides = getattr(config, "conv_kernel", ()), getattr(config, "conv_stride", ())
    for kernel, stride in zip(reversed(kernels), reversed(strides), strict=True):
        field, hop = (field - 1) * stride + kernel, hop * stride
    masking = trained and getattr(config, "apply_spec_augment", False) and config.mask_time_prob > 0
    return field + (config.mask_time_length * hop if masking else 0)


class FeatureProjector(nn.Module):
    """One feature view: a (T, dim) array per clip → ``tokens`` pooled vectors → Linear(dim → hidden)."""

    def __init__(self, dim: int, tokens: int, hidden_size: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.projector = nn.Linear(dim, hidden_size)

    def forward(self, arrays: list[torch.Tensor]) -> torch.Tensor:
        pooled = torch.cat([pool(a.float(), self.tokens) for a in arrays])
        return self.projector(pooled.to(self.projector.weight.dtype))


class ExtraTokens(nn.Module):
    """The audio tower and the feature projectors of ``AudioSettings``, and how they reach the LLM."""

    def __init__(self, settings: AudioSettings, hidden_size: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.settings = settings
        self.audio = (
            AudioTower(settings.encoder, settings.tokens, hidden_size, settings.freeze_encoder, dtype)
            if settings.encoder
            else None
        )
        self.features = nn.ModuleDict(
            {
                view: FeatureProjector(spec.dim, spec.tokens, hidden_size)
                for view, spec in settings.features.items()
            }
        )

    def tokens(self, batch: dict) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
        """(mask (B, L), tokens (n, hidden), kind) for each kind of placeholder the batch holds."""
        placed = []
        if batch.get("audio_mask") is not None:
            if self.audio is None:
                raise ValueError("the batch has audio placeholders but model.audio.encoder is not set")
            placed.append((batch["audio_mask"], self.audio(batch["audio_values"]), "audio"))
        for view, mask in (batch.get("feature_masks") or {}).items():
            if view not in self.features:
                raise ValueError(
                    f"the batch has {view!r} feature placeholders but model.audio.features lacks it"
                )
            placed.append((mask, self.features[view](batch["feature_values"][view]), f"{view} features"))
        return placed

    @contextlib.contextmanager
    def placed(self, embedding: nn.Module, batch: dict):
        """Within the block, ``embedding``'s output gets the batch's projected tokens at its placeholders
        whenever it embeds the whole batch (the training forward, generation's prefill)."""
        placed = self.tokens(batch)
        for mask, tokens, kind in placed:
            if int(mask.sum()) != len(tokens):
                raise ValueError(
                    f"{int(mask.sum())} {kind} placeholder positions but {len(tokens)} {kind} tokens"
                )
        if not placed:
            yield
            return

        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            if output.dim() != 3 or output.shape[:2] != placed[0][0].shape:
                return None  # a decode step, or another caller of the embedding
            for mask, tokens, _ in placed:
                output = output.masked_scatter(mask[..., None].to(output.device), tokens.to(output.dtype))
            return output

        handle = embedding.register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()

    def unused(self) -> torch.Tensor:
        """Zero tied to every trainable weight: a batch without placeholders still gives them a (zero)
        gradient, which DDP needs (it fails on parameters that got none)."""
        return sum((p.sum() for p in self.parameters() if p.requires_grad), torch.zeros(())) * 0.0

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What trains (projectors; the encoder too when unfrozen): what checkpoints and adapters keep."""
        return {n: p.detach().cpu().contiguous() for n, p in self.named_parameters() if p.requires_grad}

    def load_trained(self, tensors: dict[str, torch.Tensor], where: str) -> None:
        wanted = self.trained_state()
        missing = sorted(set(wanted) - set(tensors))
        unexpected = sorted(set(tensors) - dict(self.named_parameters()).keys())
        if missing or unexpected:
            raise ValueError(
                f"{where}: audio weights do not fit model.audio (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        for name, value in tensors.items():
            if value.shape != wanted.get(name, value).shape:
                raise ValueError(
                    f"{where}: audio weight {name} is {tuple(value.shape)}, model.audio needs "
                    f"{tuple(wanted[name].shape)}"
                )
        self.load_state_dict(tensors, strict=False)

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        save_file(self.trained_state(), out / WEIGHTS, metadata={"format": "pt"})
        (out / CONFIG).write_text(dumps(self.settings.to_dict(), indent=2) + "\n")


def read_saved(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """(settings, trained tensors) an adapter folder or ``M2SEModule`` checkpoint holds; None: no audio."""
    path = Path(path).expanduser()
    if path.is_dir():
        if not (path / CONFIG).is_file():
            return None
        return read_json_object(path / CONFIG), read_safetensors(path / WEIGHTS)
    checkpoint = read_m2se_checkpoint(path)
    settings = checkpoint["m2se"].get("audio")
    if settings is None:
        return None
    prefix = "extra_tokens."
    tensors = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    return settings, tensors


def saved_settings(path: str | Path | None) -> dict | None:
    """The ``model.audio`` an adapter folder or checkpoint was trained with (None: it has none)."""
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.is_dir():
        return read_json_object(path / CONFIG) if (path / CONFIG).is_file() else None
    saved = read_saved(path) if path.is_file() else None
    return saved[0] if saved else None


def evaluated_settings(configured: AudioSettings, init_from: str | None) -> AudioSettings:
    """What evaluation hears: the settings ``init_from`` was trained with, encoder path included (off
    when it has none), so the prompts get the placeholders training had. ValueError when ``configured``
    (``model.audio``) asks for other placeholders: their projectors never trained.
    """
    saved = AudioSettings.of(saved_settings(init_from))
    if configured.enabled and configured.layout() != saved.layout():
        raise ValueError(
            f"model.audio {configured.to_dict()} asks for audio or feature tokens that "
            f"{init_from or 'the base model'} was not trained with (it has "
            f"{saved.to_dict() if saved.enabled else 'none'}); leave model.audio unset to use the trained ones"
        )
    return saved


def extra_tokens_for(
    audio: AudioSettings, init_from: str | None, hidden_size: int, dtype: torch.dtype
) -> ExtraTokens | None:
    """The module's audio/feature tokens for ``audio`` (the processor's ``model.audio``), with the trained
    weights of ``init_from`` (an earlier stage's checkpoint or adapter folder) loaded when it has them.

    None when hearing is off. Raises ValueError when ``init_from`` has audio weights but ``audio``
    disables hearing, or when they do not fit ``audio``.
    """
    saved = read_saved(init_from) if init_from else None
    if not audio.enabled:
        if saved is not None:
            raise ValueError(
                f"{init_from} was trained with audio or feature tokens (model.audio) but model.audio is "
                "disabled here (the processor writes no placeholders); set model.audio as that run had it"
            )
        return None
    extra = ExtraTokens(audio, hidden_size, dtype)
    if saved is not None:
        extra.load_trained(saved[1], str(init_from))
    return extra

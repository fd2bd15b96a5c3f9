"""Prompt + pixels for a vision-language model: the project's processor (transformers' processors need
torchvision), the same for every backbone family.

A sample becomes the tokenizer's chat template around `{media}{query}` as the user turn and the answer
as the assistant turn, e.g. `<|system|>\\n{system}<|end|><|user|>\\n{media}{query}<|end|><|assistant|>\\n{answer}<|end|>`.
The media come first, one per line; how a picture is written (its text prefix, its placeholder ids)
and how its pixels become the model's visual inputs is the family's ``vision`` (``m2se.data.vision.Vision``:
``m2se.data.internvl.InternVLVision``, ``m2se.data.qwen_vl.QwenVLVision``), built with the processor by the family's ``from_pretrained`` (the model config's ``processor``). With
``audio`` settings (``model.audio``, ``m2se.audio_settings``) the media go on with `Audio: <audio>\\n`
and `{View} features: <feat>\\n` per feature view, each placeholder being ``tokens`` filler ids (the pad
id: the vocabulary never changes) that the model overwrites with projected audio or feature tokens;
the sample marks them in ``audio_mask`` / ``feature_masks``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from m2se.audio_settings import AudioSettings
from m2se.data.audio import check_tasks, load_feature_extractor
from m2se.data.tiles import check_rgb
from m2se.data.vision import Vision, count_visual

IGNORE_INDEX = -100
AUDIO = ("audio", "")  # placeholder kinds: the encoder's sound, and ("features", view) per view
_SLOT = "\x00M2SE_SLOT\x00"  # stands in for a message's content to cut the chat template around it


class OverBudgetError(Exception):
    """A sample does not fit in max_length (and could not, or was not allowed to, be truncated)."""


@dataclass
class EncodedSample:
    """One processed sample. labels are IGNORE_INDEX except on the answer and its closing <|end|>."""

    input_ids: torch.Tensor  # (L,) long
    labels: torch.Tensor  # (L,) long
    attention_mask: torch.Tensor  # (L,) long
    # The family's visual inputs (``Vision.inputs``), e.g. InternVL's pixel_values (tiles, 3, S, S) in
    # the order the pictures appear: float32, or uint8 with pixels="uint8"
    vision_inputs: dict[str, torch.Tensor]
    num_visual_tokens: int
    num_text_tokens: int  # template, query and answer: neither visual nor audio/feature placeholders
    truncated: bool
    audio_values: torch.Tensor | None = None  # (N,) float32 waveform, normalised as the encoder expects
    audio_mask: torch.Tensor | None = None  # (L,) bool: the audio placeholder's positions
    feature_values: dict[str, torch.Tensor] = field(default_factory=dict)  # view → (T, D) float32
    feature_masks: dict[str, torch.Tensor] = field(default_factory=dict)  # view → (L,) bool
    dropped: tuple[str, ...] = ()  # placeholders left out for want of sound or a view's file

    @property
    def pixel_values(self) -> torch.Tensor | None:
        return self.vision_inputs.get("pixel_values")


class M2SEProcessor:
    """Turns (query, response, media) into token ids, labels and pixel values for the model whose
    tokenizer and ``vision`` it holds. ValueError when the tokenizer has no pad token or a chat template
    that cannot be cut around an answer, or ``audio`` names unknown tasks. ``pixels``: ``float32`` gives
    the model's input (``model(**collate(batch))`` runs); ``uint8`` keeps tiles as bytes, a quarter of
    the memory and transfer, for ``model_inputs`` to normalise on the device (what training does)."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        vision: Vision,
        system_prompt: str | None = "You are an sentiment and emotion analysis expert.",
        max_length: int | None = 4096,
        over_budget: Literal["truncate", "skip"] = "truncate",
        audio: AudioSettings | Mapping | None = None,
        pixels: Literal["float32", "uint8"] = "float32",
    ) -> None:
        if over_budget not in ("truncate", "skip"):
            raise ValueError(f"over_budget must be 'truncate' or 'skip', got {over_budget!r}")
        if pixels not in ("float32", "uint8"):
            raise ValueError(f"pixels must be 'float32' or 'uint8', got {pixels!r}")
        self.pixels = pixels
        if tokenizer.pad_token_id is None:
            raise ValueError("tokenizer has no pad token; collate needs one")
        if not tokenizer.chat_template:  # prompts are written with it
            raise ValueError(f"{tokenizer.name_or_path}: the tokenizer has no chat template")
        self.tokenizer, self.vision = tokenizer, vision
        self.system_prompt, self.max_length, self.over_budget = system_prompt, max_length, over_budget
        self.audio = check_tasks(AudioSettings.of(audio))
        self.feature_extractor = load_feature_extractor(self.audio.encoder) if self.audio.encoder else None
        self.sampling_rate = self.audio.sampling_rate or getattr(
            self.feature_extractor, "sampling_rate", None
        )
        self.audio_token_id = tokenizer.pad_token_id  # filler under the placeholders, never read as text
        # Added tokens are matched in any text: written in a query they would be read as control tokens.
        self._added_tokens = tuple(sorted(tokenizer.added_tokens_encoder, key=len, reverse=True))
        # The chat template is rendered once around placeholders: the user turn splits into the text
        # before/after its content, and the assistant turn gives what wraps an answer.
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        user = [*system, {"role": "user", "content": _SLOT}]
        prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": _SLOT}], tokenize=False)
        if prompt.count(_SLOT) != 1 or not full.startswith(prompt) or full.count(_SLOT) != 2:
            raise ValueError(
                "the tokenizer's chat template must write a generation prompt that prefixes the answer"
            )
        self._user_head, self._user_tail = prompt.split(_SLOT)
        self._answer_head, self._answer_tail = full[len(prompt) :].split(_SLOT)

    @property
    def tile_size(self) -> int:
        """The side of the square tiles media are read as (the vision's)."""
        return self.vision.tile_size

    def image_tiles(self, max_tiles: int) -> int:
        """The most tiles an image is cut into: ``max_tiles`` (``data.max_tiles``), or fewer where the
        family takes fewer (``Vision.max_image_tiles``)."""
        family = self.vision.max_image_tiles
        return max_tiles if family is None else min(max_tiles, family)

    @property
    def stop_token_ids(self) -> list[int]:
        """Token ids that end an answer: the chat template's end of turn (the first token after the
        answer, which training teaches) and the tokenizer's eos, when they differ (some native
        releases keep ``</s>`` as eos while their turns end with ``<|im_end|>``)."""
        tail = self.tokenizer(self._answer_tail, add_special_tokens=False)["input_ids"][:1]
        eos = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        return list(dict.fromkeys([*tail, *eos]))

    def answer_ids(self, response: str) -> list[int]:
        """The token ids training teaches for ``response``: the answer, wrapped and ended as the chat
        template writes an assistant turn (what follows the generation prompt)."""
        answer = self._answer_head + response + self._answer_tail
        return self.tokenizer(answer, add_special_tokens=False)["input_ids"]

    def __call__(
        self,
        query: str,
        response: str | None = None,
        images: Sequence[np.ndarray] = (),
        videos: Sequence[np.ndarray] = (),
        audio: np.ndarray | None = None,
        features: Mapping[str, np.ndarray] | None = None,
    ) -> EncodedSample:
        """Encode one sample; response=None gives the generation prompt (a prefix of the training ids
        unless truncation cut the query: the prompt alone has more room).

        images: one uint8 (T, H, W, 3) array per image, its tiles (see tile_image); videos: one
        uint8 (N, H, W, 3) array per clip, one tile per frame; audio: mono float32 (N,) at
        ``sampling_rate`` (needs ``audio.encoder``); features: view → float32 (T, D) (views of
        ``audio.features``). Raises OverBudgetError when the sample exceeds max_length and cannot (or,
        with over_budget="skip", may not) be cut down.
        """
        for i, array in enumerate(images):
            check_rgb(array, 4, f"images[{i}]")
        for i, array in enumerate(videos):
            check_rgb(array, 4, f"videos[{i}]")
        features = dict(features or {})
        self._check_extras(audio, features)
        image_tiles, video_frames = [len(x) for x in images], [len(x) for x in videos]
        views = [v for v in self.audio.features if v in features]
        (head, media_ids, query_ids, tail, answer_ids), spans = self._pieces(
            query, response, image_tiles, video_frames, audio is not None, views
        )
        num_visual = count_visual(media_ids, self.vision)
        query_ids, truncated = self._fit(query_ids, len(head) + len(media_ids) + len(tail) + len(answer_ids))
        prompt_ids = head + media_ids + query_ids + tail
        input_ids = torch.tensor(prompt_ids + answer_ids, dtype=torch.long)
        if count_visual(input_ids, self.vision) != num_visual:
            tokens = self.tokenizer.convert_ids_to_tokens(list(self.vision.visual_token_ids))
            raise ValueError(
                f"query or response contains the text of {' or '.join(map(repr, tokens))}; "
                "it would misalign the image features"
            )
        labels = input_ids.clone()
        labels[: len(prompt_ids)] = IGNORE_INDEX
        masks = {}
        for kind, (start, count) in spans.items():
            masks[kind] = torch.zeros(len(input_ids), dtype=torch.bool)
            masks[kind][len(head) + start : len(head) + start + count] = True
        vision = self.vision.inputs(images, videos, self.pixels == "float32") if num_visual else {}
        return EncodedSample(
            input_ids=input_ids,
            labels=labels,
            attention_mask=torch.ones_like(input_ids),
            vision_inputs=vision,
            num_visual_tokens=num_visual,
            num_text_tokens=len(input_ids) - num_visual - sum(count for _, count in spans.values()),
            truncated=truncated,
            audio_values=None if audio is None else self.audio_values(audio),
            audio_mask=masks.pop(AUDIO, None),
            feature_values={v: torch.from_numpy(np.asarray(features[v], np.float32)) for v in views},
            feature_masks={v: masks[("features", v)] for v in views},
        )

    def model_inputs(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """A batch's visual keyword inputs as the model takes them: uint8 pixels normalised where they
        are (on the GPU after transfer), token inputs recomputed from ``batch["input_ids"]`` (they follow
        re-padded tokens), absent ones left out (``generate`` runs the vision tower for any pixel key)."""
        given = {k: batch[k] for k in self.vision.input_names if batch.get(k) is not None}
        if not any(k in given for k in self.vision.pixel_names):
            return {}
        for name in [k for k in self.vision.pixel_names if k in given and given[k].dtype == torch.uint8]:
            given[name] = self.vision.normalise(given[name])
        return {**given, **self.vision.token_inputs(batch["input_ids"])}

    def audio_values(self, waveform: np.ndarray) -> torch.Tensor:
        """Mono float32 (N,) at ``sampling_rate`` → the encoder's input values (its feature extractor's)."""
        out = self.feature_extractor(waveform, sampling_rate=self.sampling_rate, return_tensors="np")
        return torch.from_numpy(np.asarray(out.input_values[0], np.float32).reshape(-1))

    def _check_extras(self, audio: np.ndarray | None, features: dict[str, np.ndarray]) -> None:
        if audio is not None:
            if self.audio.encoder is None:
                raise ValueError("audio given, but the processor has no audio encoder (model.audio.encoder)")
            if not isinstance(audio, np.ndarray) or audio.ndim != 1 or not audio.size:
                raise ValueError(
                    f"audio: expected a non-empty mono (N,) array, got {getattr(audio, 'shape', audio)}"
                )
        for view, array in features.items():
            spec = self.audio.features.get(view)
            if spec is None:
                known = ", ".join(self.audio.features) or "none"
                raise ValueError(f"features: unknown view {view!r} (model.audio.features has {known})")
            if np.ndim(array) != 2 or np.shape(array)[1] != spec.dim or not np.shape(array)[0]:
                raise ValueError(f"features[{view!r}]: expected (T, {spec.dim}), got {np.shape(array)}")

    def count_tokens(
        self,
        query: str,
        response: str | None = None,
        image_tiles: Sequence[int] = (),
        video_frames: Sequence[int] = (),
        audio: bool = False,
        views: Sequence[str] = (),
    ) -> int:
        """Length (visual + text + placeholders) that __call__ would give before any truncation,
        without any pixels; ``audio`` and ``views`` say which placeholders the sample has."""
        pieces, _ = self._pieces(query, response, image_tiles, video_frames, audio, views)
        return sum(map(len, pieces))

    def placeholders(self, task: str, feature_views: Sequence[str] = ()) -> dict:
        """``count_tokens``' ``audio`` and ``views`` for a record of ``task`` with these feature files,
        assuming its sound is there (an upper bound: missing sound drops the placeholder)."""
        if not self.audio.applies_to(task):
            return {"audio": False, "views": ()}
        views = tuple(v for v in self.audio.features if self.audio.missing == "skip" or v in feature_views)
        return {"audio": self.audio.encoder is not None, "views": views}

    def control_token_in(self, *texts: str) -> str | None:
        """The first of the tokenizer's added tokens (``<IMG_CONTEXT>``, ``<|end|>``, ...) written in
        ``texts``, or None: the tokenizer would read it as that token, misaligning the image features or
        ending a turn early, so such records are refused (``MultiTaskDataModule``)."""
        return next((t for t in self._added_tokens if any(t in text for text in texts)), None)

    def _pieces(
        self,
        query: str,
        response: str | None,
        image_tiles: Sequence[int],
        video_frames: Sequence[int],
        audio: bool = False,
        views: Sequence[str] = (),
    ) -> tuple[tuple[list[int], ...], dict[tuple[str, str], tuple[int, int]]]:
        """Token ids of (template head, media, query, template tail, answer + end of turn), and where in
        the media ids each placeholder sits: kind (``AUDIO`` or ``("features", view)``) → (start, count)."""
        # Per picture: the text before it and its number of tiles; images first, then video frames.
        media = self.vision.pictures(image_tiles, video_frames)
        prefixes, placeholders = [text for text, _ in media], [ids for _, ids in media]
        # Text is tokenized piecewise (ms-swift style) so that the query's tokens are known exactly;
        # visual tokens are written as ids, never parsed from text.
        # Then the placeholders Emotion-LLaMA adds: audio, then each feature view in config order.
        extras = [(AUDIO, "Audio: ", self.audio.tokens)] if audio else []
        extras += [
            (("features", v), f"{v.capitalize()} features: ", self.audio.features[v].tokens) for v in views
        ]
        pieces = [self._user_head, *prefixes, *(text for _, text, _ in extras), "\n", query, self._user_tail]
        head, *prefix_ids, newline, query_ids, tail = self.tokenizer(
            pieces, add_special_tokens=False
        ).input_ids
        prefix_ids, extra_ids = prefix_ids[: len(prefixes)], prefix_ids[len(prefixes) :]
        media_ids: list[int] = []
        for ids, placeholder in zip(prefix_ids, placeholders, strict=True):
            media_ids += ids + placeholder + newline
        spans = {}
        for ids, (kind, _, count) in zip(extra_ids, extras, strict=True):
            spans[kind] = (len(media_ids) + len(ids), count)
            media_ids += ids + [self.audio_token_id] * count + newline
        answer_ids = [] if response is None else self.answer_ids(response)
        return (head, media_ids, query_ids, tail, answer_ids), spans

    def _fit(self, query_ids: list[int], fixed: int) -> tuple[list[int], bool]:
        """Drop tokens from the start of the query so fixed + query fits max_length (the tail holds the task)."""
        total = fixed + len(query_ids)
        if self.max_length is None or total <= self.max_length:
            return query_ids, False
        excess = total - self.max_length
        if self.over_budget == "skip":
            raise OverBudgetError(
                f"sample has {total} tokens > max_length {self.max_length} (over_budget='skip')"
            )
        if excess >= len(query_ids):
            raise OverBudgetError(
                f"sample has {total} tokens > max_length {self.max_length}; {fixed} of them (media, template, "
                f"answer) are never cut, and cutting {excess} would leave nothing of the {len(query_ids)}-token query"
            )
        return query_ids[excess:], True

    def collate(self, batch: list[EncodedSample], padding_side: Literal["right", "left"] = "right") -> dict:
        """Pad to the longest sample (left padding for batched generation); model(**collate(batch)) runs."""
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        length = max(len(sample.input_ids) for sample in batch)

        def pad(values: torch.Tensor, fill: int) -> torch.Tensor:
            padding = values.new_full((length - len(values),), fill)
            return torch.cat([values, padding] if padding_side == "right" else [padding, values])

        out = {
            "input_ids": torch.stack([pad(s.input_ids, self.tokenizer.pad_token_id) for s in batch]),
            "labels": torch.stack([pad(s.labels, IGNORE_INDEX) for s in batch]),
            "attention_mask": torch.stack([pad(s.attention_mask, 0) for s in batch]),
            "pixel_values": None,  # the key is always there; a text-only batch has None
        }
        # The family's visual inputs, samples in batch order (the pictures' order in the token ids).
        for name in dict.fromkeys(k for s in batch for k in s.vision_inputs):
            out[name] = torch.cat([s.vision_inputs[name] for s in batch if name in s.vision_inputs])
        if any(s.vision_inputs for s in batch):
            out.update(self.vision.token_inputs(out["input_ids"]))

        def masks(of) -> torch.Tensor:  # a sample without the placeholder gets an all-False row
            rows = [
                of(s) if of(s) is not None else torch.zeros(len(s.input_ids), dtype=torch.bool) for s in batch
            ]
            return torch.stack([pad(row, False) for row in rows])

        # Only batches with placeholders carry these keys, so model(**collate(batch)) still runs without.
        # Values are listed in sample order, as the masks' rows place them.
        if any(s.audio_mask is not None for s in batch):
            out["audio_values"] = [s.audio_values for s in batch if s.audio_values is not None]
            out["audio_mask"] = masks(lambda s: s.audio_mask)
        views = [v for v in self.audio.features if any(v in s.feature_masks for s in batch)]
        if views:
            out["feature_values"] = {
                v: [s.feature_values[v] for s in batch if v in s.feature_values] for v in views
            }
            out["feature_masks"] = {v: masks(lambda s, v=v: s.feature_masks.get(v)) for v in views}
        return out

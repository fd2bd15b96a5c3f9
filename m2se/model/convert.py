"""Convert an original (remote-code) InternVL checkpoint into a native transformers InternVL directory.

    python -m m2se.model.convert /models/InternVL2-4B /models/InternVL2-4B-native

InternVL2 1B (Qwen2), 2B/8B (InternLM2 → Llama), 4B (Phi-3); InternVL2.5 1B/4B (Qwen2.5), 2B/8B
(InternLM2.5 → Llama); InternVL3 1B/2B/8B (Qwen2.5). Other LLMs (InternVL3.5's Qwen3, ...) are refused
with one line; checkpoints published natively (the `-hf` repos) need no conversion. The result loads
offline with `InternVLForConditionalGeneration.from_pretrained(dst)` and `AutoTokenizer.from_pretrained(dst)`,
needs neither remote code nor timm, and its tokenizer's chat template writes the checkpoint's own
conversation format (config.json's `template`). Weights stream shard by shard, dtype unchanged.
`m2se_converted.json` in the result records the source folder, its template and system message, so
that `python -m m2se.export format=original` can hand the LLM's own tokenizer files back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (
    GenerationConfig,
    InternVLConfig,
    InternVLForConditionalGeneration,
)

from m2se.files import dumps
from m2se.model.convert_keys import (
    BACKBONES,
    IGNORED,
    TEMPLATES,
    KeyMapper,
    UnsupportedConfig,
    text_config,
    vision_config,
)
from m2se.model.convert_tokenizer import IMAGE_TOKENS, ConversionError, _read_json, convert_tokenizer

__all__ = ["ConversionError", "ConversionReport", "convert_checkpoint", "convert_tokenizer", "main"]

# Written beside the converted model: where it came from (m2se.model.export_original reads it).
SOURCE_RECORD = "m2se_converted.json"


@dataclass
class ConversionReport:
    """What was converted. `ok` is False when a native weight got no value (it would load randomly initialised)."""

    src: Path
    dst: Path
    backbone: str  # the original llm_config's architecture
    template: str
    image_token_id: int
    dtype: str = ""
    source_tensors: int = 0
    native_tensors: int = 0
    unmapped: list[str] = field(default_factory=list)  # original keys no rule turns into a native weight
    ignored: list[str] = field(default_factory=list)  # original buffers the native model recomputes
    tied: list[str] = field(default_factory=list)  # original lm_head dropped: the native model ties it
    missing: list[str] = field(default_factory=list)  # native weights nothing was written for
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def lines(self) -> list[str]:
        out = [
            f"converted {self.src} -> {self.dst}: {self.backbone}, template {self.template}, {self.dtype}, "
            f"{self.source_tensors} original tensors -> {self.native_tensors} native, "
            f"<IMG_CONTEXT> = {self.image_token_id}"
        ]
        for name, keys in (("tied to the embeddings", self.tied), ("ignored", self.ignored)):
            if keys:
                out.append(f"{name} ({len(keys)}): {', '.join(keys)}")
        out += [f"note: {note}" for note in self.notes]
        for name, keys in (
            ("unmapped original keys", self.unmapped),
            ("MISSING native weights", self.missing),
        ):
            if keys:
                out.append(f"{name} ({len(keys)}):")
                out += [f"  {key}" for key in keys]
        return out


def read_original_config(src: Path) -> dict:
    """config.json of an original InternVL checkpoint, checked for what conversion relies on."""
    path = src / "config.json"
    if not src.is_dir():
        raise ConversionError(f"{src}: not a directory (an original InternVL checkpoint is needed)")
    original = _read_json(path)
    archs = original.get("architectures") or []
    if "InternVLChatModel" not in archs:
        raise ConversionError(f"{path}: architectures {archs} is not ['InternVLChatModel'] (already native?)")
    for key in ("llm_config", "vision_config", "template"):
        if key not in original:
            raise ConversionError(f"{path}: no {key!r}")
    arch = (original["llm_config"].get("architectures") or ["?"])[0]
    if arch not in BACKBONES:
        raise ConversionError(
            f"{path}: unknown llm architecture {arch!r} (supported: {', '.join(BACKBONES)}; "
            f"a checkpoint published natively, an -hf repo, loads without conversion)"
        )
    if original["template"] not in TEMPLATES:
        raise ConversionError(
            f"{path}: unknown template {original['template']!r} (known: {', '.join(TEMPLATES)})"
        )
    # InternVL2.5/3 write `system_message: null` (the template's default); a string replaces it.
    if not isinstance(original.get("system_message"), str | None):
        raise ConversionError(f"{path}: system_message is not a string or null")
    # InternVLChatConfig defaults ps_version to v1, a transposed pixel shuffle the native class lacks.
    if original.get("ps_version", "v1") != "v2":
        raise ConversionError(
            f"{path}: ps_version {original.get('ps_version', 'v1 (default)')} is not supported"
        )
    force, size = original.get("force_image_size"), original["vision_config"].get("image_size")
    if force not in (None, size):
        raise ConversionError(f"{path}: force_image_size {force} != vision_config.image_size {size}")
    return original


def native_config(original: dict, image_token_id: int, where: Path) -> InternVLConfig:
    """InternVLConfig for an original config.json (as read by read_original_config)."""
    try:
        vision, text = vision_config(original["vision_config"]), text_config(original["llm_config"])
        ratio = original.get("downsample_ratio", 0.5)
        tokens = int((vision["image_size"] // vision["patch_size"]) ** 2 * ratio**2)
        config = InternVLConfig(
            vision_config=vision,
            text_config=text,
            image_token_id=image_token_id,
            image_seq_length=tokens,
            downsample_ratio=ratio,
            vision_feature_layer=original.get("select_layer", -1),
            vision_feature_select_strategy="default",  # the original drops the CLS token
            projector_hidden_act="gelu",
            tie_word_embeddings=text.tie_word_embeddings,
        )
    except UnsupportedConfig as e:
        raise ConversionError(f"{where}: {e}") from None
    except KeyError as e:
        raise ConversionError(f"{where}: missing {e}") from None
    if image_token_id >= text.vocab_size:
        raise ConversionError(
            f"{where}: <IMG_CONTEXT> id {image_token_id} >= llm vocab_size {text.vocab_size}"
        )
    return config


# ---------------------------------------------------------------- tokenizer


def _weight_files(src: Path) -> list[Path]:
    for index, single in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        if (src / index).exists():
            files = sorted(set(_read_json(src / index).get("weight_map", {}).values()))
            for name in files:
                if not (src / name).exists():
                    raise ConversionError(f"{src / index}: lists {name}, which is not there")
            return [src / name for name in files]
        if (src / single).exists():
            return [src / single]
    raise ConversionError(
        f"{src}: no weights (model.safetensors[.index.json] or pytorch_model.bin[.index.json])"
    )


def _read_tensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """One tensor at a time (safetensors), or one mmapped shard (pytorch_model.bin)."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                yield key, f.get_tensor(key)
    else:
        yield from torch.load(path, map_location="cpu", mmap=True, weights_only=True).items()


class ShardWriter:
    """Writes tensors into safetensors shards of at most max_bytes, named as save_pretrained names them."""

    def __init__(self, dst: Path, max_bytes: int) -> None:
        self.dst, self.max_bytes = dst, max_bytes
        self.pending: dict[str, torch.Tensor] = {}
        self.pending_bytes, self.total_bytes = 0, 0
        self.shards: list[list[str]] = []

    def add(self, name: str, tensor: torch.Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if self.pending and self.pending_bytes + size > self.max_bytes:
            self._flush()
        # A clone owns its storage: the pieces of a split qkv must not share one in the file.
        self.pending[name] = tensor.contiguous().clone()
        self.pending_bytes += size
        self.total_bytes += size

    def _flush(self) -> None:
        save_file(self.pending, str(self.dst / f"shard-{len(self.shards)}.tmp"), metadata={"format": "pt"})
        self.shards.append(list(self.pending))
        self.pending, self.pending_bytes = {}, 0

    def finish(self) -> None:
        if self.pending or not self.shards:
            self._flush()
        n = len(self.shards)
        names = (
            ["model.safetensors"]
            if n == 1
            else [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
        )
        for i, name in enumerate(names):
            (self.dst / f"shard-{i}.tmp").rename(self.dst / name)
        if n > 1:
            weight_map = {key: name for name, keys in zip(names, self.shards, strict=True) for key in keys}
            index = {
                "metadata": {"total_size": self.total_bytes},
                "weight_map": dict(sorted(weight_map.items())),
            }
            (self.dst / "model.safetensors.index.json").write_text(dumps(index, indent=2) + "\n")


def expected_weights(config: InternVLConfig) -> dict[str, torch.Size]:
    """Native weight names and shapes (tied ones left out, as save_pretrained leaves them out)."""
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    tied = set(model.all_tied_weights_keys)
    return {name: t.shape for name, t in model.state_dict().items() if name not in tied}


def _convert_weights(
    files: list[Path],
    mapper: KeyMapper,
    config: InternVLConfig,
    writer: ShardWriter,
    report: ConversionReport,
) -> None:
    """Stream the original tensors through the key rules into the writer; fills the report's key lists."""
    expected = expected_weights(config)
    written, dtypes = set(), set()
    for path in files:
        for key, tensor in _read_tensors(path):
            report.source_tensors += 1
            if IGNORED.fullmatch(key):
                report.ignored.append(key)
                continue
            pieces = mapper(key, tensor)
            if pieces is None:
                report.unmapped.append(key)
                continue
            for name, piece in pieces:
                if name == "lm_head.weight" and config.tie_word_embeddings:
                    report.tied.append(key)
                elif name not in expected:
                    report.unmapped.append(key)
                elif name in written:
                    raise ConversionError(f"{path}: {key} gives {name}, which another tensor already gave")
                elif piece.shape != expected[name]:
                    raise ConversionError(
                        f"{path}: {key} -> {name} has shape {tuple(piece.shape)}, config.json implies "
                        f"{tuple(expected[name])}"
                    )
                else:
                    writer.add(name, piece)
                    written.add(name)
                    dtypes.add(piece.dtype)
    writer.finish()
    report.native_tensors = len(written)
    report.missing = sorted(set(expected) - written)
    if len(dtypes) == 1:
        config.dtype = dtypes.pop()
    report.dtype = str(config.dtype).removeprefix("torch.")


def convert_checkpoint(src: Path, dst: Path, max_shard_bytes: int = 2 * 2**30) -> ConversionReport:
    """Write the native model, config, generation config and tokenizer for the original checkpoint `src` to `dst`.

    Raises ConversionError (one line, naming the file) for what cannot be converted; weights that
    cannot be matched are reported, not raised: check `report.ok` (no native weight left unset).
    """
    src, dst = Path(src), Path(dst)
    original = read_original_config(src)
    files = _weight_files(src)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise ConversionError(f"{dst}: exists and is not an empty directory")
    notes: list[str] = []
    tokenizer = convert_tokenizer(src, original["template"], notes, original.get("system_message"))
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKENS[2])
    config = native_config(original, image_token_id, src / "config.json")
    arch = original["llm_config"]["architectures"][0]
    report = ConversionReport(src, dst, arch, original["template"], image_token_id, notes=notes)
    created = not dst.exists()
    dst.mkdir(parents=True, exist_ok=True)
    try:
        mapper, writer = KeyMapper(original["llm_config"]), ShardWriter(dst, max_shard_bytes)
        _convert_weights(files, mapper, config, writer, report)
    except BaseException:
        # Leave no half-written model behind (a rerun would refuse the non-empty directory).
        for path in dst.iterdir():
            path.unlink()
        if created:
            dst.rmdir()
        raise
    config.architectures = ["InternVLForConditionalGeneration"]
    config.save_pretrained(dst)
    # InternVLChatModel.chat stops on the turn end (the template's sep), not on the LLM's eos.
    generation = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    generation.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    source = {
        "source": str(src.resolve()),
        "template": original["template"],
        "system_message": original.get("system_message"),
    }
    (dst / SOURCE_RECORD).write_text(dumps(source, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "src", type=Path, help="original InternVL checkpoint directory (config.json, weights, tokenizer)"
    )
    parser.add_argument("dst", type=Path, help="directory to write (new or empty)")
    parser.add_argument("--max-shard-gb", type=float, default=2.0, help="largest safetensors shard to write")
    args = parser.parse_args(argv)
    try:
        report = convert_checkpoint(args.src, args.dst, int(args.max_shard_gb * 2**30))
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a file the readers choke on: still one line, naming the source
        print(f"error: {args.src}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    if not report.ok:
        print(f"error: {len(report.missing)} native weights have no value in {args.src}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

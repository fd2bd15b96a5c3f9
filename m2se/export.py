"""python -m m2se.export ckpt=ADAPTER_OR_CKPT out=DIR [dtype=bf16] [format=native|original] [key=value ...]

A trained checkpoint as one standalone model folder: every LoRA it holds (both stages) and any trained
projector merged into the base, with config, tokenizer (its chat template writes the trained system
prompt), the prompt and media settings (m2se_export.json), the audio parts, and a README.md model card.

keys:
  ckpt            a PEFT adapter folder (RUN/adapter) or a training checkpoint (RUN/checkpoints/last.ckpt)
  out             the folder to write (new or empty; written beside it and renamed into place)
  dtype           bf16 (default) | fp16 | fp32: the saved weights' type (merged in fp32 first)
  format          native (default): the family's transformers model | original: InternVL2's InternVLChatModel layout
  model           the base model, where the checkpoint's own record (its base path) no longer finds it
  results         an evaluate.py output folder for the card (default: found beside the training run)
  overwrite       true: replace a non-empty out
  max_shard_size  largest weight file (default 4GB)
  cache_dir       where an original base checkpoint is converted to (default $M2SE_CACHE/converted)

Exit 2 on a bad key or value, 1 when the export fails; either prints one line `error: ...`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from transformers.utils import logging as hf_logging

from m2se.files import first_line
from m2se.model.adapters import backbone_of
from m2se.model.audio import saved_settings
from m2se.model.export import DTYPES, FORMATS, Exported, export_model
from m2se.model.exported import DEFAULT_BACKBONE, ExportRecord, read_export
from m2se.model.model_card import render_card
from m2se.model.training_runs import data_manifests, find_evaluations, training_runs, training_settings


@dataclass
class ExportArgs:
    ckpt: str | None = None
    out: str | None = None
    dtype: str = "bf16"
    format: str = "native"
    model: str | None = None
    results: str | None = None
    overwrite: bool = False
    max_shard_size: str = "4GB"
    cache_dir: str = os.path.join(os.environ.get("M2SE_CACHE", "~/.cache/m2se"), "converted")


def parse(argv: list[str]) -> ExportArgs:
    """``key=value`` arguments onto ExportArgs; ValueError (one line) for an unknown key, a value of the
    wrong type or a missing ckpt or out."""
    known = [f.name for f in dataclasses.fields(ExportArgs)]
    for arg in argv:
        key = arg.split("=", 1)[0]
        if "=" not in arg or key not in known:
            raise ValueError(f"unknown argument {arg!r} (known keys: {', '.join(known)}; give key=value)")
    given = [arg.split("=", 1)[0] for arg in argv]
    twice = next((key for key in given if given.count(key) > 1), None)
    if twice is not None:  # the last would win silently
        raise ValueError(f"{twice}= is given twice")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ExportArgs), OmegaConf.from_dotlist(argv))
    except OmegaConfBaseException as err:  # a value of the wrong type: name the key
        raise ValueError(f"{getattr(err, 'full_key', None) or 'argument'}: {first_line(err)}") from None
    args = ExportArgs(**OmegaConf.to_container(merged))
    for key in ("ckpt", "out"):
        if not getattr(args, key):
            raise ValueError(f"{key}= is required (python -m m2se.export ckpt=ADAPTER_OR_CKPT out=DIR)")
    if args.dtype not in DTYPES or args.format not in FORMATS:
        raise ValueError(
            f"dtype={args.dtype} format={args.format}: dtype is one of {', '.join(DTYPES)}, format one of {', '.join(FORMATS)}"
        )
    return args


def export(args: ExportArgs) -> Exported:
    """Read the training runs behind ``args.ckpt`` for the settings and the card, then export."""
    ckpt = Path(args.ckpt).expanduser()
    runs = training_runs(ckpt) if ckpt.exists() else []  # a missing ckpt: export_model says so
    processor, settings_from = training_settings(runs)
    found = find_evaluations(ckpt, runs, args.results) if ckpt.exists() else []
    if found:  # m2se.evaluation imports the tasks and their metrics: only when there is a table to write
        from m2se.evaluation import summary_table

        found = [(folder, summary_table(metrics)) for folder, metrics in found]

    def card(record: ExportRecord, folder: Path, adapters: list) -> str:
        audio = saved_settings(ckpt) if record.audio else None
        return render_card(record, folder, adapters, runs, data_manifests(runs), found, audio)

    # The family the checkpoint records (InternVL for those that record none: made before Qwen-VL).
    family = backbone_of(ckpt) if ckpt.exists() and read_export(ckpt) is None else DEFAULT_BACKBONE
    options = (runs[-1].get("model.processor") if runs else None) or {}
    options = {k: v for k, v in options.items() if k not in ("_target_", "path")}
    return export_model(
        ckpt, args.out, processor, settings_from, card, args.model, args.dtype, args.format,
        args.overwrite, args.max_shard_size, args.cache_dir, backbone=family,
        model_processor=options,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__)
        return 0
    try:
        args = parse(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # transformers' loading and writing bars: noise for a few files
    try:
        result = export(args)
    except (OSError, ValueError) as err:  # missing files, a LoRA that does not fit, ...: one line
        if os.environ.get("M2SE_TRACEBACK"):
            raise
        print(f"error: {first_line(err)}", file=sys.stderr)
        return 1
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    size = result.bytes / 2**20
    print(
        f"{result.path}: {args.format} {result.record.dtype}, {size:.1f} MiB, "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

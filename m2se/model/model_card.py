"""The README.md model card of an export folder: how to load it, the prompt and media settings, how it
was trained (stages, mixtures, LoRA, steps), the data manifests and the evaluations found."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from m2se.files import dumps, read_json_object
from m2se.model.adapters import Adapter
from m2se.model.exported import ExportRecord
from m2se.model.training_runs import HydraRun

UNKNOWN = "unknown"


def render_card(
    record: ExportRecord,
    folder: Path,
    adapters: Sequence[Adapter],
    runs: Sequence[HydraRun],
    manifests: dict[Path, dict],
    evaluations: Sequence[tuple[Path, str]],
    audio: dict | None,
) -> str:
    """The card's markdown. ``folder``: the export being written (its config.json is read);
    ``evaluations``: (evaluate.py output folder, its metrics as a markdown table)."""
    model_type = read_json_object(folder / "config.json").get("model_type", "")
    family = (
        "internvl" if record.format == "original" else model_type
    )  # the original layout's is internvl_chat
    lines = [
        "---",
        f"base_model: {dumps(record.base)}",
        "library_name: transformers" if record.format == "native" else "library_name: internvl",
        "pipeline_tag: image-text-to-text",
        f"tags: [m2se, {family}, emotion-recognition, sentiment-analysis]",
        "---",
        f"# {Path(record.base).name}, fine-tuned with m2se",
        "",
        f"`{record.base}` with the LoRA of `{record.ckpt}` merged in ({_lora_list(adapters)}), saved in "
        f"{record.dtype} in the {record.format} layout by `python -m m2se.export ckpt={record.ckpt} "
        f"format={record.format}`. A later stage's adapter folder holds every stage's LoRA, stacked.",
        "",
        *_loading(record, folder),
        *_settings(record),
        *_recipe(runs),
        *_data(manifests),
        *(_audio(audio) if audio else []),
        *_evaluation(evaluations),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _lora_list(adapters: Sequence[Adapter]) -> str:
    parts = [f"r={a.config.get('r')}, alpha={a.config.get('lora_alpha')}" for a in adapters]
    return f"{len(adapters)} adapter(s): " + "; ".join(parts) if parts else "no adapter"


def _loading(record: ExportRecord, folder: Path) -> list[str]:
    p = record.processor
    if record.format == "native":
        architecture = (read_json_object(folder / "config.json").get("architectures") or ["?"])[0]
        if p.get("tokens_per_tile"):
            pictures = (
                f"each picture is `<img>` + `<IMG_CONTEXT>` × {p.get('tokens_per_tile')} per "
                f"{p.get('tile_size')}-px tile + `</img>`, media first (`Frame1: <image>\\n` ... per video frame)"
            )
        else:
            options = ", ".join(f"{k}={v}" for k, v in record.model_processor.items()) or "its defaults"
            pictures = (
                f"pictures are written as m2se writes them for the `{record.backbone}` family "
                f"({options}; docs in m2se's README), media first"
            )
        return [
            "## Loading",
            "",
            "```python",
            "from transformers import AutoModelForImageTextToText, AutoTokenizer",
            f'model = AutoModelForImageTextToText.from_pretrained("DIR")  # {architecture}',
            'tokenizer = AutoTokenizer.from_pretrained("DIR")',
            "```",
            "",
            f"The chat template writes the system prompt training used when a conversation has none. As in "
            f"training, {pictures}, then the text. In m2se, `python evaluate.py ckpt=DIR` and "
            "`python predict.py ckpt=DIR` take this folder as the model, with the settings below "
            "(`m2se_export.json`; give the model config it was trained with, `model=...`).",
            "",
        ]
    config = read_json_object(folder / "config.json")
    repo = next(iter(config.get("auto_map", {}).values()), "").split("--")[0]
    return [
        "## Loading",
        "",
        "InternVL2's own layout (`InternVLChatModel`, `llm_config`/`vision_config`), as ms-swift 2.x, "
        "lmdeploy and InternVL's scripts load it:",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        'model = AutoModel.from_pretrained("DIR", trust_remote_code=True)',
        'tokenizer = AutoTokenizer.from_pretrained("DIR", trust_remote_code=True, use_fast=False)',
        "```",
        "",
        f"config.json's `auto_map` takes the model code from the hub repo `{repo}` (not copied here); the "
        f"conversation template is `{config.get('template')}` and the trained system prompt is "
        "config.json's `system_message` (InternVL2.5/3's code reads it; with InternVL2's, set "
        "`model.system_message`). `python -m m2se.model.convert DIR NATIVE_DIR` gives the native layout "
        "back, weights bit for bit.",
        "",
    ]


def _settings(record: ExportRecord) -> list[str]:
    p = record.processor
    rows = [
        ("system prompt", p.get("system_prompt")),
        ("token budget per sample (max_length)", p.get("max_length")),
        ("over budget", p.get("over_budget")),
        ("video frames (num_frames)", p.get("num_frames")),
        ("image tiles at most (max_tiles)", p.get("max_tiles")),
        ("thumbnail tile (use_thumbnail)", p.get("use_thumbnail")),
        ("video frames to tiles (video_resize)", p.get("video_resize")),
        # A family whose config fixes no tile (its processor sets a frame size instead) has no such rows.
        *((name, p.get(key)) for name, key in TILE_ROWS if key in p),
        *((f"model.processor.{k}", v) for k, v in record.model_processor.items()),
    ]
    return [
        "## Prompt and media settings",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {name} | {_cell(value)} |" for name, value in rows),
        "",
        f"From {record.settings_from}.",
        "",
    ]


TILE_ROWS = (("tile size (px)", "tile_size"), ("tokens per tile", "tokens_per_tile"))


def _cell(value) -> str:
    return UNKNOWN if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def _recipe(runs: Sequence[HydraRun]) -> list[str]:
    lines = ["## Training recipe", ""]
    if not runs:
        return [*lines, f"{UNKNOWN}: no Hydra run folder (`.hydra/config.yaml`) beside the checkpoint.", ""]
    for i, run in enumerate(runs, 1):
        mixture = run.get("data.mixture")
        curriculum = run.get("callbacks.curriculum")
        if isinstance(curriculum, dict):  # stage=curriculum: both mixtures in one run
            step = curriculum.get("switch_step")
            switch = f"step {step}" if step else f"epoch {curriculum.get('switch_epoch')}"
            names = [curriculum.get("first"), curriculum.get("second")]
            mixes = "; then ".join(f"`{n}` {_weights(run.get(f'data.mixtures.{n}'))}" for n in names)
            mixes += f" (switching at {switch})"
        else:
            mixes = f"`{mixture}` {_weights(run.get(f'data.mixtures.{mixture}'))}"
        lora = run.get("module.lora") or {}
        optimizer = run.get("module.optimizer") or {}
        trainer = run.get("trainer") or {}
        choices = ", ".join(
            f"{k}={v}" for k, v in run.choices.items() if k in ("stage", "experiment", "model", "data") and v
        )
        lines += [
            f"### Stage {i}: `{run.folder}`" + (f" ({choices})" if choices else ""),
            "",
            f"- model: `{run.get('model.path', UNKNOWN)}`; started from: `{run.get('ckpt') or 'the base'}`",
            f"- mixture: {mixes}; data: `{run.get('data.data_dir', UNKNOWN)}`",
            f"- LoRA: r={lora.get('r')}, alpha={lora.get('alpha')}, dropout={lora.get('dropout')}, "
            f"parts={lora.get('parts')}, target_modules={lora.get('target_modules') or 'every Linear'}, "
            f"trained in full={lora.get('trainable_parts') or 'nothing'}",
            f"- optimizer: AdamW lr={optimizer.get('lr')}, weight_decay={optimizer.get('weight_decay')}, "
            f"warmup_ratio={optimizer.get('warmup_ratio')}",
            f"- schedule: max_epochs={trainer.get('max_epochs')}, max_steps={trainer.get('max_steps')}, "
            f"batch {run.get('data.batch_size')} × accumulate {trainer.get('accumulate_grad_batches')}; "
            f"optimizer steps trained: {UNKNOWN if run.steps is None else run.steps}",
            f"- hearing (model.audio): {_audio_line(run.get('model.audio'))}",
            "",
        ]
    return lines


def _weights(mixture) -> str:
    if not isinstance(mixture, dict):
        return f"({UNKNOWN})"
    return "{" + ", ".join(f"{task}: {weight}" for task, weight in mixture.items()) + "}"


def _audio_line(audio) -> str:
    if not isinstance(audio, dict) or not (audio.get("encoder") or audio.get("features")):
        return "none"
    return f"encoder `{audio.get('encoder')}`, {audio.get('tokens')} tokens, tasks {audio.get('tasks')}"


def _data(manifests: dict[Path, dict]) -> list[str]:
    lines = ["## Data", ""]
    if not manifests:
        return [
            *lines,
            "No `stages_manifest.json` beside the training data: not built by `m2se.sources` (or moved).",
            "",
        ]
    for path, manifest in manifests.items():
        lines += [
            f"`{path}` (seed {manifest.get('seed')}):",
            "",
            "| file | records | sha256 |",
            "|---|---|---|",
        ]
        for stage in (manifest.get("stages") or {}).values():
            lines.append(f"| {stage.get('file')} | {stage.get('records')} | `{stage.get('sha256')}` |")
        for source, entry in (manifest.get("sources") or {}).items():
            lines.append(f"| source {source} | {entry.get('records')} | `{entry.get('sha256')}` |")
        lines.append("")
    return lines


def _audio(audio: dict) -> list[str]:
    tasks = audio.get("tasks")
    return [
        "## Hearing",
        "",
        "`audio.safetensors` and `audio_config.json` hold what trained for hearing (the projectors of the "
        f"speech encoder `{audio.get('encoder')}` and of the feature views {sorted(audio.get('features') or {})}; "
        "the encoder itself is read from that path, not copied). m2se (`evaluate.py`/`predict.py ckpt=DIR`) "
        "uses them. A loader without them (plain transformers, vLLM, lmdeploy, ms-swift) ignores these "
        "files: its prompts carry no `Audio:` placeholders and the model answers from pictures and text "
        f"alone, so tasks trained with sound ({'every task' if tasks == 'all' else tasks}) lose what "
        "only the sound told.",
        "",
    ]


def _evaluation(evaluations: Sequence[tuple[Path, str]]) -> list[str]:
    lines = ["## Evaluation", ""]
    if not evaluations:
        return [
            *lines,
            "Not evaluated: no `evaluate.py` output for this checkpoint was found beside its run "
            "(`results=DIR` names one).",
            "",
        ]
    for folder, table in evaluations:
        lines += [f"`python evaluate.py` in `{folder}` (its `metrics.json`):", "", table, ""]
    return lines

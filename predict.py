"""python predict.py ckpt=ADAPTER_OR_CKPT task=erc inputs=CLIP_OR_FOLDER_OR_GLOB [text="..."] [out=FILE]

Thin entry point: Hydra composes conf/predict.yaml and hands the config to ``predict(cfg)``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from m2se.callbacks.answer_writer import AnswerWriter
from m2se.cli import build_data, build_module, precision, prepare_demo, run
from m2se.config_checks import check_before_work
from m2se.data.questions import read_questions
from m2se.parsing import check_parse_mode
from m2se.versions import write_versions

log = logging.getLogger("m2se.predict")  # under m2se: printed to the console, kept in the run log

# ShardedBatches (m2se.data.loaders) yields every index; Lightning cannot know that of a custom sampler.
warnings.filterwarnings("ignore", message="You are using a custom batch sampler")


def predict(cfg: DictConfig, callbacks: Sequence[L.Callback] = ()) -> AnswerWriter:
    """Answer every input of ``inputs``; one JSONL line each in ``out`` (see README, "Prediction").
    ``callbacks`` join the trainer's (bench/prediction.py times the run with one).

    Returns the writer (its ``path``, ``counts`` and ``answers``). Inputs that cannot be asked, and
    media that cannot be read, get a line with ``error``; the others go on. ValueError after writing
    when every input failed.
    """
    check_before_work(cfg)  # a wrong path or mixture stops the run before anything loads
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    write_versions(cfg.output_dir)
    if cfg.prepare_demo:
        prepare_demo(cfg)
    if cfg.parse is not None:
        check_parse_mode(cfg.parse)
    if not isinstance(cfg.scores, bool):
        raise ValueError(f"scores must be true or false, got {cfg.scores!r}")
    if cfg.text is not None and not isinstance(cfg.text, str):
        raise ValueError(f"text must be a string (quote it: text='...'), got {cfg.text!r}")
    questions = read_questions(
        str(cfg.inputs), cfg.task, cfg.text, cfg.media_root, bool(cfg.data.get("allow_media_outside_root"))
    )
    backbone, datamodule = build_data(cfg, evaluating=True)
    refused = [(where, cfg.task, message) for where, message in questions.errors]
    records = []
    for record in questions.records:  # read as a control token, it would misalign the media or end the turn
        token = datamodule.processor.control_token_in(record.query)
        if token is None:
            records.append(record)
        else:
            message = f"the query contains {token!r}, which the tokenizer reads as a control token"
            refused.append((record.where, record.task, message))
    out = Path(cfg.out) if cfg.out else Path(cfg.output_dir) / "predictions.jsonl"
    _check_out(out, cfg.inputs, questions)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("", encoding="utf-8")  # a rerun replaces the file; lines are appended batch by batch
    writer = AnswerWriter(out, questions.names)
    writer.write(
        [
            {"input": where, "task": task, "response": None, "answer": None, "error": message}
            for where, task, message in refused
        ]
    )
    if records:
        module = build_module(cfg, backbone, datamodule)
        module.predict_scores = bool(cfg.scores)
        trainer = instantiate(
            cfg.trainer,
            precision=precision(cfg.trainer.precision),
            callbacks=[writer, *callbacks],
            _convert_="all",
        )
        if trainer.world_size > 1:
            raise ValueError("predict.py runs on one device (trainer.devices=1): its answers go to one file")
        trainer.predict(module, dataloaders=datamodule.question_loader(records), return_predictions=False)
    _report(writer, questions.ignored)
    if writer.counts["error"] and writer.counts["error"] == sum(writer.counts.values()):
        hint = ""
        if Path(str(cfg.inputs)).suffix.lower() in (".json", ".jsonl"):
            hint = "; a record file's media paths are relative to media_root= (default: the file's folder)"
        raise ValueError(f"every input failed, e.g. {writer.first_error} (lines in {writer.path}){hint}")
    return writer


def _check_out(out: Path, inputs: str, questions) -> None:
    """Refuse an ``out`` that is one of the inputs (the record file, a clip, a sidecar): it is rewritten."""
    read = {Path(str(inputs)).expanduser()} | {m for r in questions.records for m in r.media}
    read |= {m.with_suffix(".txt") for r in questions.records for m in r.media}
    if out.exists() and any(out.resolve() == p.resolve() for p in read if p.exists()):
        raise ValueError(f"out={out} is one of the inputs; it would be overwritten (give another file)")


def _report(writer: AnswerWriter, ignored: list[Path]) -> None:
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(writer.counts.items()))
    log.info(f"{sum(writer.counts.values())} inputs: {counts or 'none'}")
    if writer.truncated:
        log.warning(
            f"{writer.truncated} queries were cut to data.processor.max_length tokens (their lines say truncated)"
        )
    if writer.answers:
        log.info("answers: " + ", ".join(f"{label} {n}" for label, n in writer.answers.most_common()))
    if ignored:
        shown = ", ".join(p.name for p in ignored[:3]) + (", ..." if len(ignored) > 3 else "")
        log.warning(f"{len(ignored)} files are neither video nor image and were not asked about: {shown}")
    log.info(f"written to {writer.path}")


@hydra.main(config_path="conf", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(predict, cfg)


if __name__ == "__main__":
    main()

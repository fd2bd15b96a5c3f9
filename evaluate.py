"""python evaluate.py task=erc|...|all [ckpt=PATH | predictions=FILE | baseline=majority|self_cause]

Thin entry point: Hydra composes conf/evaluate.yaml and hands the config to ``evaluate(cfg)``.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, open_dict

from m2se.cli import build_data, build_module, precision, prepare_demo, run
from m2se.config_checks import check_before_work
from m2se.data.records import RecordError, load_records
from m2se.evaluation import TaskResult, markdown_table, scorable, score, write_results
from m2se.parsing import check_parse_mode
from m2se.predictions import read_predictions
from m2se.results import baseline_column, score_baselines, write_results_md
from m2se.tasks import TASKS
from m2se.tasks.prediction import Prediction
from m2se.versions import write_versions

log = logging.getLogger("m2se.evaluate")  # under m2se: printed to the console, kept in the run log


def baselines() -> list[str]:
    """Every baseline some task offers (``baseline=NAME``)."""
    return sorted({name for task in TASKS.values() for name in task.answer.baselines})


def _tasks(cfg: DictConfig) -> list[str]:
    if cfg.task == "all":
        return list(TASKS)
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r} (expected one of {', '.join(TASKS)}, or all)")
    spec = TASKS[cfg.task]
    if cfg.parse not in (None, "exact") and not spec.answer.reads_parse_modes:
        raise ValueError(f"parse={cfg.parse} reads label answers; {cfg.task}'s answers are {spec.kind}")
    if cfg.parse is not None and spec.answer.reads_parse_modes and spec.parse_mode(cfg.parse) != cfg.parse:
        raise ValueError(
            f"parse={cfg.parse} reproduces a published scorer {cfg.task} never had "
            f"(reference modes of {cfg.task}: {', '.join(spec.reference_modes) or 'none'})"
        )
    return [cfg.task]


def _test_rows(cfg: DictConfig, task: str) -> tuple[list[Prediction], Counter]:
    source = cfg.data.test_sources[task]
    loaded = load_records(
        source.path,
        source.get("media_root"),
        task,
        skip_errors=cfg.data.get("on_bad_record") == "skip",
        outside_ok=bool(cfg.data.get("allow_media_outside_root")),
    )
    _report_skips(loaded.errors)
    if not loaded.records:
        raise RecordError.no_records(source.path, loaded.skipped)
    rows = [Prediction.of_record(r) for r in loaded.records]
    return rows, loaded.skipped


def _report_skips(errors: list[str], shown: int = 5) -> None:
    """The first skipped records' ``file:record: reason`` lines (data.on_bad_record=skip); counts go to metrics.json."""
    for line in errors[:shown]:
        log.warning(f"skipped {line}")
    if len(errors) > shown:
        log.warning(f"... and {len(errors) - shown} more skipped (counted in metrics.json)")


def score_file(cfg: DictConfig) -> dict[str, TaskResult]:
    task = None if cfg.task == "all" else _tasks(cfg)[0]
    skip = cfg.data.get("on_bad_record") == "skip"
    read = read_predictions(cfg.predictions, task, skip, cfg.duplicates)
    _report_skips(read.errors)
    if read.unassigned:
        counts = ", ".join(f"{reason} {n}" for reason, n in read.unassigned.most_common())
        log.warning(f"{cfg.predictions}: rows skipped before their task was known: {counts}")
    results = {}
    for name in [*read.rows, *(t for t in read.skipped if t not in read.rows)]:
        rows = read.rows.get(name, [])  # none: every row of the task was skipped
        result = score(name, [r.response for r in rows], rows, cfg.protocol, cfg.parse, cfg.predictions, skip)
        _report_skips(result.errors)
        result.skipped += read.skipped.get(name, Counter())
        result.duplicates = read.duplicates[name]
        results[name] = result
    return results


def run_baseline(cfg: DictConfig) -> dict[str, TaskResult]:
    if cfg.baseline not in baselines():
        raise ValueError(f"unknown baseline {cfg.baseline!r} (expected one of {', '.join(baselines())})")
    tasks = [
        t for t in _tasks(cfg) if cfg.baseline in TASKS[t].answer.baselines and t in cfg.data.test_sources
    ]
    if not tasks:
        with_file = [t for t in _tasks(cfg) if t in cfg.data.test_sources]
        offered = "; ".join(f"{t}: {', '.join(TASKS[t].answer.baselines) or 'none'}" for t in with_file)
        raise ValueError(
            f"baseline={cfg.baseline} applies to none of the tasks with a test file"
            + (f" (their baselines: {offered})" if with_file else f" (no test file for task={cfg.task})")
        )
    others = [t for t in _tasks(cfg) if t in cfg.data.test_sources and t not in tasks]
    if others:  # said, not silently dropped from task=all
        offered = "; ".join(f"{t}: {', '.join(TASKS[t].answer.baselines) or 'none'}" for t in others)
        log.warning(
            f"baseline={cfg.baseline} does not apply to {', '.join(others)} (their baselines: {offered})"
        )
    results = {}
    for task in tasks:
        rows, skipped = _test_rows(cfg, task)
        predictions = TASKS[task].baseline(cfg.baseline, rows, cfg.parse)
        skip = cfg.data.get("on_bad_record") == "skip"
        results[task] = score(
            task, predictions, rows, cfg.protocol, cfg.parse, cfg.data.test_sources[task].path, skip
        )
        _report_skips(results[task].errors)
        results[task].skipped += skipped
    return results


def generate(cfg: DictConfig) -> dict[str, TaskResult]:
    tasks = [t for t in _tasks(cfg) if t in cfg.data.test_sources]
    if not tasks:
        raise ValueError(f"no test file for task {cfg.task} in data.test_sources")
    with open_dict(cfg):
        cfg.data.test_sources = {t: cfg.data.test_sources[t] for t in tasks}
    # As train.py builds them; prompts get the audio placeholders the checkpoint was trained with.
    backbone, datamodule = build_data(cfg, evaluating=True)
    datamodule.setup("test")
    for task, records in datamodule.test_records.items():  # refused before the model loads
        records[:] = _scorable(cfg, task, records, datamodule.test_skipped.setdefault(task, Counter()))
        if not records:
            raise RecordError.no_records(datamodule.test_sources[task].path, datamodule.test_skipped[task])
    module = build_module(cfg, backbone, datamodule)
    trainer = instantiate(cfg.trainer, precision=precision(cfg.trainer.precision), _convert_="all")
    trainer.test(module, datamodule=datamodule, verbose=False)
    results = {}
    for task in datamodule.test_records:  # a task whose every sample was skipped keeps an entry
        results[task] = module.test_results.get(task) or score(
            task, [], [], cfg.protocol, cfg.parse, datamodule.test_sources[task].path
        )
    for task, result in results.items():  # skipped at load, then media that could not be read
        result.source = result.source or str(datamodule.test_sources[task].path)
        result.skipped = datamodule.test_skipped.get(task, Counter()) + datamodule.skips_by_task.get(
            task, Counter()
        )
    return results


def _scorable(cfg: DictConfig, task: str, records: list, skipped: Counter) -> list:
    """The records whose gold answer the run's parse mode can score (``m2se.evaluation.scorable``)."""
    mode = TASKS[task].parse_mode(cfg.parse)
    skip = cfg.data.get("on_bad_record") == "skip"
    kept, left_out, errors = scorable(task, mode, records, skip, gold=lambda r: r.response)
    skipped.update(left_out)
    _report_skips(errors)
    return kept


def evaluate(cfg: DictConfig) -> dict[str, TaskResult]:
    """Score a model, a predictions file or a baseline; write the results under ``output_dir``."""
    check_before_work(cfg)  # a wrong path or mixture stops the run before anything loads
    L.seed_everything(cfg.seed, workers=True)
    if rank_zero_only.rank == 0:
        write_versions(cfg.output_dir)
    if cfg.prepare_demo:
        prepare_demo(cfg)
    if cfg.predictions and cfg.baseline:
        raise ValueError("give predictions=FILE or baseline=NAME, not both")
    if cfg.parse is not None:
        check_parse_mode(cfg.parse)
    results = score_file(cfg) if cfg.predictions else run_baseline(cfg) if cfg.baseline else generate(cfg)
    # Beside a model's (or a file's) scores, its tasks' trivial baselines on the same rows.
    baselines, notes = ({}, []) if cfg.baseline else score_baselines(results, cfg.protocol, cfg.parse)
    for note in notes:
        log.warning(note)
    if rank_zero_only.rank == 0:
        out = write_results(results, Path(cfg.output_dir), baselines)
        write_results_md(out, results, baselines, _scored(cfg), notes)
        log.info(markdown_table(results, baseline_column(results, baselines)))
        log.info(f"results.md, predictions, metrics.json and figures: {out}")
    empty = [(task, result) for task, result in results.items() if not result.metrics.get("count")]
    if empty:  # written above with its skip counts; still an error: there is no score to report
        task, result = empty[0]
        raise RecordError.no_records(f"{result.source}: task {task}", result.skipped)
    for task, result in results.items():  # every record left out by the protocol: no score either
        if result.metrics.get("excluded_by_protocol") == result.metrics["count"]:
            raise RecordError(
                f"{result.source}: task {task}",
                f"every record has an empty gold answer, which protocol={cfg.protocol} leaves out "
                "(protocol=semeval scores them)",
                "excluded by protocol",
            )
    return results


def _scored(cfg: DictConfig) -> str:
    """What the results are of, for results.md."""
    if cfg.predictions:
        return f"the predictions file {cfg.predictions}"
    if cfg.baseline:
        return f"the {cfg.baseline} baseline"
    return (
        f"ckpt={cfg.ckpt} on model.path={cfg.model.path}" if cfg.ckpt else f"the base model {cfg.model.path}"
    )


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(evaluate, cfg)


if __name__ == "__main__":
    main()

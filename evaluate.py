"""python evaluate.py task=erc|...|all [ckpt=PATH | predictions=FILE | baseline=majority|self_cause]

Thin entry point: Hydra composes conf/evaluate.yaml and hands the config to ``evaluate(cfg)``.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, open_dict

from m2se.cli import precision, prepare_demo, resolve_model, run
from m2se.data.records import load_records
from m2se.evaluation import TaskResult, markdown_table, read_predictions, score, write_results
from m2se.metrics import majority_baseline, self_cause_baseline
from m2se.tasks import TASKS
from m2se.versions import write_versions

BASELINES = {"majority": "classification", "self_cause": "pairs"}


def _tasks(cfg: DictConfig) -> list[str]:
    if cfg.task == "all":
        return list(TASKS)
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r} (expected one of {', '.join(TASKS)}, or all)")
    return [cfg.task]


def _test_rows(cfg: DictConfig, task: str) -> list[dict]:
    source = cfg.data.test_sources[task]
    records = load_records(source.path, source.get("media_root"), task).records
    return [
        {
            "where": r.where,
            "query": r.query,
            "label": r.response,
            "media": [str(p) for p in r.media],
            "meta": r.meta,
        }
        for r in records
    ]


def score_file(cfg: DictConfig) -> dict[str, TaskResult]:
    task = None if cfg.task == "all" else _tasks(cfg)[0]
    by_task = read_predictions(cfg.predictions, task)
    return {
        t: score(t, [r["prediction"] for r in rows], rows, cfg.protocol, cfg.parse)
        for t, rows in by_task.items()
    }


def run_baseline(cfg: DictConfig) -> dict[str, TaskResult]:
    if cfg.baseline not in BASELINES:
        raise ValueError(f"unknown baseline {cfg.baseline!r} (expected one of {', '.join(BASELINES)})")
    tasks = [
        t for t in _tasks(cfg) if TASKS[t].kind == BASELINES[cfg.baseline] and t in cfg.data.test_sources
    ]
    if not tasks:
        raise ValueError(f"baseline={cfg.baseline} applies to none of the tasks with a test file: {cfg.task}")
    results = {}
    for task in tasks:
        rows = _test_rows(cfg, task)
        if cfg.baseline == "majority":
            predictions = majority_baseline([r["label"] for r in rows], task)
        else:
            predictions = self_cause_baseline([r["query"] for r in rows])
        results[task] = score(task, predictions, rows, cfg.protocol, cfg.parse)
    return results


def generate(cfg: DictConfig) -> dict[str, TaskResult]:
    from m2se.model.audio import saved_settings
    from m2se.model.module import M2SEModule

    resolve_model(cfg)
    tasks = [t for t in _tasks(cfg) if t in cfg.data.test_sources]
    if not tasks:
        raise ValueError(f"no test file for task {cfg.task} in data.test_sources")
    with open_dict(cfg):
        cfg.data.test_sources = {t: cfg.data.test_sources[t] for t in tasks}
        saved = saved_settings(cfg.ckpt)
        if saved is not None:  # prompts get the audio placeholders the adapter was trained with
            cfg.data.processor.audio = saved
    datamodule = instantiate(cfg.data, _convert_="all")
    module = M2SEModule(
        cfg.model.path, load=dict(cfg.load), init_from=cfg.ckpt, protocol=cfg.protocol, parse=cfg.parse
    )
    trainer = instantiate(cfg.trainer, precision=precision(cfg.trainer.precision), _convert_="all")
    trainer.test(module, datamodule=datamodule, verbose=False)
    return module.test_results


def evaluate(cfg: DictConfig) -> dict[str, TaskResult]:
    """Score a model, a predictions file or a baseline; write the results under ``output_dir``."""
    L.seed_everything(cfg.seed, workers=True)
    if rank_zero_only.rank == 0:
        write_versions(cfg.output_dir)
    if cfg.prepare_demo:
        prepare_demo(cfg)
    if cfg.predictions and cfg.baseline:
        raise ValueError("give predictions=FILE or baseline=NAME, not both")
    results = score_file(cfg) if cfg.predictions else run_baseline(cfg) if cfg.baseline else generate(cfg)
    if rank_zero_only.rank == 0:
        out = write_results(results, Path(cfg.output_dir))
        print(markdown_table(results))
        print(f"predictions, metrics.json and figures: {out}")
    return results


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(evaluate, cfg)


if __name__ == "__main__":
    main()

"""What the Hydra run folders beside a checkpoint say about how it was made: the stages that led to it,
the prompt and media settings it trained with, the data manifests, and the evaluations run on it.

A run folder is the one holding ``.hydra/config.yaml`` (``train.py`` and ``evaluate.py`` write it): an
adapter ``RUN/adapter`` or checkpoint ``RUN/checkpoints/last.ckpt`` belongs to ``RUN``. Relative paths
in a run's config are read against the folder it ran from (``.hydra/hydra.yaml``'s ``runtime.cwd``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from m2se.files import read_json_object
from m2se.model.checkpoints import CheckpointError, load_checkpoint
from m2se.model.exported import CONFIG_KEYS, LEGACY

# The project's defaults for the settings a run's config did not record.
DEFAULTS = Path(__file__).resolve().parents[2] / "conf" / "data" / "shared" / "datamodule.yaml"
MANIFEST = "stages_manifest.json"  # m2se.sources.stages writes it beside the stage files


@dataclass
class HydraRun:
    """One run folder: its composed config (``get`` resolves a key, None when absent or unresolvable),
    the folder it ran from and its config-group choices (``stage``, ``experiment``, ``model``, ``data``)."""

    folder: Path
    config: object  # the OmegaConf DictConfig of .hydra/config.yaml
    cwd: Path
    choices: dict = field(default_factory=dict)

    def get(self, key: str, default=None):
        try:
            value = OmegaConf.select(self.config, key, default=default)
            return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        except Exception:  # an interpolation only Hydra resolves (${hydra:...}) or a broken one
            return default

    def path(self, value: str) -> Path:
        """A path this run's config names, as the run saw it."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.cwd / path

    @functools.cached_property
    def steps(self) -> int | None:
        """Optimizer steps the run trained (its ``checkpoints/last.ckpt``), None when unknown."""
        try:
            step = load_checkpoint(self.folder / "checkpoints" / "last.ckpt").get("global_step")
        except (OSError, CheckpointError):
            return None
        return step if isinstance(step, int) else None


def read_run(folder: Path) -> HydraRun | None:
    """The Hydra run at ``folder``; None when it has no readable ``.hydra/config.yaml``."""
    config_file = folder / ".hydra" / "config.yaml"
    try:
        config = OmegaConf.load(config_file)
        hydra_file = folder / ".hydra" / "hydra.yaml"
        hydra = OmegaConf.load(hydra_file) if hydra_file.is_file() else OmegaConf.create()
        runtime = OmegaConf.to_container(OmegaConf.select(hydra, "hydra.runtime") or OmegaConf.create())
    except Exception:  # missing, or not YAML: a folder without a readable run config tells nothing
        return None
    if "output_dir" in config:  # ${hydra:runtime.output_dir}, which only a running Hydra resolves
        config.output_dir = str(folder)
    cwd = Path(runtime.get("cwd") or Path.cwd())
    return HydraRun(folder.resolve(), config, cwd, dict(runtime.get("choices") or {}))


def run_of(ckpt: Path) -> HydraRun | None:
    """The run that wrote ``ckpt`` (an adapter folder or a checkpoint file): the first of its parent and
    grandparent that is a run folder (``RUN/adapter``, ``RUN/checkpoints/last.ckpt``)."""
    for folder in list(Path(ckpt).resolve().parents)[:2]:
        run = read_run(folder)
        if run is not None:
            return run
    return None


def training_runs(ckpt: Path) -> list[HydraRun]:
    """The runs that made ``ckpt``, oldest first: its own, then each earlier stage its ``ckpt=`` named."""
    runs: list[HydraRun] = []
    run = run_of(ckpt)
    while run is not None and len(runs) < 16 and all(r.folder != run.folder for r in runs):
        runs.insert(0, run)
        earlier = run.get("ckpt")
        run = run_of(run.path(earlier)) if isinstance(earlier, str) else None
    return runs


def training_settings(runs: list[HydraRun]) -> tuple[dict, str]:
    """(setting → value, where they came from) for ``CONFIG_KEYS``: the last run's config, or for
    settings it lacks the project defaults (conf/data/shared/datamodule.yaml)."""
    defaults = HydraRun(
        DEFAULTS.parent, OmegaConf.create({"data": OmegaConf.load(DEFAULTS)}), DEFAULTS.parent
    )
    run = runs[-1] if runs else None
    settings, from_defaults = {}, []
    for name, key in CONFIG_KEYS.items():
        value = run.get(key) if run else None
        if value is None and run is not None and name in LEGACY:
            value = LEGACY[name]  # the run predates the setting
        if value is None:
            value = defaults.get(key)
            from_defaults.append(name)
        settings[name] = value
    if run is None:
        return (
            settings,
            "project defaults (conf/data/shared/datamodule.yaml): no training run config was found",
        )
    source = str(run.folder / ".hydra" / "config.yaml")
    return settings, source + (f"; project defaults for {', '.join(from_defaults)}" if from_defaults else "")


def data_manifests(runs: list[HydraRun]) -> dict[Path, dict]:
    """``stages_manifest.json`` of every folder the runs' data came from (``data.data_dir`` and the
    folders of ``data.sources``), when the builders wrote one."""
    found: dict[Path, dict] = {}
    for run in runs:
        folders = [run.get("data.data_dir")] + [
            str(Path(s["path"]).parent)
            for s in run.get("data.sources") or []
            if isinstance(s, dict) and s.get("path")
        ]
        for folder in folders:
            manifest = run.path(folder) / MANIFEST if folder else None
            if manifest and manifest.is_file() and manifest.resolve() not in found:
                try:
                    found[manifest.resolve()] = read_json_object(manifest)
                except ValueError:
                    continue
    return found


def find_evaluations(ckpt: Path, runs: list[HydraRun], results: str | None = None) -> list[tuple[Path, dict]]:
    """(folder, metrics.json) of the evaluations of ``ckpt``: the ``evaluate.py`` output ``results`` when
    given, else every folder one or two levels below the training run's parent's parent (``demo_out/eval``
    for ``demo_out/runs/second``, ``outputs/evaluate/TIME`` for ``outputs/train/TIME``) holding a
    metrics.json and a ``.hydra/config.yaml`` whose ``ckpt`` is this same path; newest first.
    FileNotFoundError when ``results`` has no metrics.json."""
    if results is not None:
        folder = Path(results).expanduser()
        if not (folder / "metrics.json").is_file():
            raise FileNotFoundError(f"results {folder}: no metrics.json (give an evaluate.py output folder)")
        return [(folder, read_json_object(folder / "metrics.json"))]
    if not runs:
        return []
    root, target = runs[-1].folder.parent.parent, Path(ckpt).resolve()
    found = []
    for metrics in {*root.glob("*/metrics.json"), *root.glob("*/*/metrics.json")}:
        run = read_run(metrics.parent)
        named = run.get("ckpt") if run else None
        if isinstance(named, str) and run.path(named).resolve() == target:
            try:
                found.append((metrics.stat().st_mtime, metrics.parent, read_json_object(metrics)))
            except ValueError:
                continue
    return [(folder, metrics) for _, folder, metrics in sorted(found, key=lambda x: x[0], reverse=True)]

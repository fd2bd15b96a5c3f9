"""What train.py and evaluate.py share: one-line errors, the demo's first-use set-up, building the
data and the module from config the same way, precision."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue

from m2se.audio_settings import AudioSettings
from m2se.data.media_errors import MediaError
from m2se.data.processor import M2SEProcessor
from m2se.data.records import RecordError
from m2se.files import first_line
from m2se.logs import route_to_run_log
from m2se.model.adapters import warn_other_size
from m2se.model.audio import evaluated_settings
from m2se.model.exported import read_export
from m2se.model.guard import NonFiniteError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from m2se.data.datamodule import MultiTaskDataModule
    from m2se.model.backbone import Backbone
    from m2se.model.module import M2SEModule


# What bad input or a wrong path raises; these end the run with one line, not a traceback.
# A diverged run (NonFiniteError) ends the same way: its checkpoints are kept, nothing more is written.
# A required key left unset (predict.py's inputs=???) is one too.
USER_ERRORS = (
    RecordError, MediaError, OSError, ValueError, InstantiationException, NonFiniteError, MissingMandatoryValue,
)  # fmt: skip


def one_line(err: BaseException) -> str:
    """The innermost cause's first line: Hydra wraps errors raised while building objects."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return first_line(err)


class RunDirCheck(Callback):
    """Hydra callback: a run folder that cannot be created or written ends the run with one line.

    Hydra makes the folder itself, before any entry point code runs, and reports failure with a traceback.
    """

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        folder = Path(config.hydra.run.dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".m2se-write-check-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as err:
            sys.exit(
                f"error: cannot write the run folder {folder} ({err.strerror or err}); set hydra.run.dir=DIR"
            )


# Config keys that name a file or folder; null means "none" (output_dir and data files must be set).
PATH_KEYS = (
    "output_dir", "ckpt", "resume", "predictions", "model.path", "model.cache_dir", "data.data_dir",
    "data.frame_cache", "inputs", "out", "media_root",
)  # fmt: skip


def _path_keys(cfg: DictConfig) -> list[str]:
    keys = list(PATH_KEYS)
    data = cfg.get("data") or {}
    for name in ("sources", "val_sources"):
        for i, _ in enumerate(data.get(name) or []):
            keys += [f"data.{name}[{i}].path", f"data.{name}[{i}].media_root"]
    for task in data.get("test_sources") or {}:
        keys += [f"data.test_sources.{task}.path", f"data.test_sources.{task}.media_root"]
    return keys


def check_paths(cfg: DictConfig) -> None:
    """Every path in the config is a string (a number is taken as the file name it spells) or, where it
    may be absent, null. ValueError naming the key otherwise (``predictions=[a,b]``)."""
    with open_dict(cfg):
        for key in _path_keys(cfg):
            value = OmegaConf.select(cfg, key, default=None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                OmegaConf.update(cfg, key, str(value))
            elif value is None and (
                key == "output_dir"
                or key.endswith("].path")
                or key.endswith(".path")
                and key.startswith("data.")
            ):
                raise ValueError(f"{key} must be a path, got null")
            elif value is not None and not isinstance(value, str):
                kind = (
                    "a list"
                    if isinstance(value, ListConfig)
                    else "a mapping"
                    if isinstance(value, DictConfig)
                    else repr(value)
                )
                raise ValueError(f"{key} must be a path, got {kind}")


def check_seed(cfg: DictConfig) -> None:
    """``seed`` is an integer (``seed=inf`` would end in an OverflowError deep in Lightning)."""
    seed = cfg.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def import_user_modules(names: Sequence[str]) -> None:
    """Import the config's ``imports``: dotted module names or ``.py`` files, the researcher's own code
    run before the job (for instance ``register_task`` calls). ValueError naming one that is missing."""
    for name in names:
        name = str(name)
        if name.endswith(".py"):
            path = Path(name).expanduser()
            if not path.is_file():
                raise ValueError(f"imports: {name}: no such file")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):  # the module itself, not one it imports
                raise ValueError(
                    f"imports: no module named {name!r} (a dotted module on sys.path, or a .py file)"
                ) from None
            raise


def run(job: Callable[[DictConfig], object], cfg: DictConfig) -> None:
    """Run an entry point's job; user errors exit with ``error: ...`` (``M2SE_TRACEBACK=1`` for the trace)."""
    try:
        route_to_run_log()
        import_user_modules(cfg.get("imports") or [])
        check_paths(cfg)
        check_seed(cfg)
        job(cfg)
    except USER_ERRORS as err:
        if os.environ.get("M2SE_TRACEBACK"):
            raise
        sys.exit(f"error: {one_line(err)}")


def prepare_demo(cfg: DictConfig) -> None:
    """Build the tiny model and the demo dataset where the config expects them, if they are missing."""
    from m2se.data.demo import DEMO_MARK, write_demo_dataset
    from m2se.model.tiny import build_tiny_audio_encoder

    # A model config that can make its model says how (model.build: the tiny models).
    model = Path(cfg.model.path)
    if cfg.model.get("build") and not (model / "config.json").is_file():
        # Never into a user's folder: only a new or empty one.
        if model.exists() and (not model.is_dir() or any(model.iterdir())):
            raise FileNotFoundError(
                f"model.path {model}: holds no model (no config.json) and is not an empty folder; "
                "experiment=demo builds its tiny model only into an empty or new folder"
            )
        instantiate(cfg.model.build)
    encoder = (cfg.model.get("audio") or {}).get("encoder")
    if encoder and not (Path(encoder) / "config.json").is_file():
        build_tiny_audio_encoder(Path(encoder))
    # Written when a file the config trains on is missing (an older demo folder lacks audio_stage.json,
    # which experiment=demo_audio reads); a folder holding all of them is left as it is.
    folder = Path(cfg.data.data_dir)
    wanted = [folder / "first_stage.json", *(Path(s.path) for s in cfg.data.sources)]
    missing = [path for path in wanted if not path.is_file()]
    if not missing:
        return
    # Only a folder that holds no dataset of its own (or an earlier demo, marked) is written into:
    # a user's data_dir missing one file is an error, never overwritten with demo records.
    if folder.is_dir() and any(folder.iterdir()) and not (folder / DEMO_MARK).is_file():
        raise FileNotFoundError(
            f"{missing[0]}: missing, and {folder} is not a demo folder (experiment=demo writes the demo "
            "dataset only into an empty or new folder; set data.data_dir to one, or drop experiment=demo)"
        )
    write_demo_dataset(folder)


def command_line_keys() -> list[str]:
    """The config keys the command line set (``data.num_frames=2``, not group choices such as ``data=demo``);
    none outside a running Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    hydra = HydraConfig.get()
    keys = [override.split("=", 1)[0].lstrip("+~") for override in hydra.overrides.task]
    return [key for key in keys if key not in hydra.runtime.choices]


def use_export(cfg: DictConfig, given: Sequence[str] = ()) -> list[str]:
    """When ``ckpt`` is an export folder (``python -m m2se.export``): it becomes the model (``model.path``)
    and the prompt and media settings it records replace the config's, except the keys in ``given`` (set
    on the command line). Returns the keys replaced."""
    record = read_export(cfg.get("ckpt"))
    if record is None:
        return []
    with open_dict(cfg):
        cfg.model.path = str(cfg.ckpt)
        replaced = []
        for key, value in record.config_values().items():
            if not any(key == g or key.startswith(g + ".") for g in given):
                OmegaConf.update(cfg, key, value)
                replaced.append(key)
    log.warning(f"ckpt {cfg.ckpt} is an m2se export: it is the model, with its {', '.join(replaced)}")
    return replaced


def build_data(cfg: DictConfig, evaluating: bool = False) -> tuple[Backbone, MultiTaskDataModule]:
    """The backbone (``model.backbone``, resolved to a local native directory: ``model.path`` follows
    it) and the DataModule (``data``) with the processor ``model.processor`` builds from that directory,
    the data config's prompt options (``data.processor``) and ``model.audio``. An export folder as
    ``ckpt`` is the model itself, with the settings it records (``use_export``).

    Evaluating, ``model.audio`` is what the checkpoint ``ckpt`` was trained with (``evaluated_settings``).
    """
    use_export(cfg, command_line_keys())
    backbone = instantiate(cfg.model.backbone)
    if not all(callable(getattr(backbone, name, None)) for name in ("resolved", "load")):
        raise ValueError(
            f"model.backbone._target_ built a {type(backbone).__name__}, not a backbone (see m2se.model.backbone)"
        )
    backbone = backbone.resolved()
    with open_dict(cfg):
        cfg.model.path = backbone.path
    audio = AudioSettings.of(OmegaConf.to_container(cfg.model.audio, resolve=True))
    if evaluating:
        audio = evaluated_settings(audio, cfg.ckpt)
    options = OmegaConf.to_container(cfg.data.get("processor") or {}, resolve=True)
    # Partial, then called: Hydra would take the dataclasses (settings, backbone) for configs to merge.
    try:
        processor = instantiate(cfg.model.processor, _partial_=True)(**options, audio=audio)
    except TypeError as err:  # a key the family's processor does not take (a typo, another family's)
        raise ValueError(f"model.processor / data.processor: {first_line(err)}") from None
    if not isinstance(processor, M2SEProcessor):
        raise ValueError(f"model.processor._target_ built a {type(processor).__name__}, not an M2SEProcessor")
    return backbone, instantiate(cfg.data, processor=processor, _convert_="all")


def build_module(cfg: DictConfig, backbone: Backbone, datamodule: MultiTaskDataModule) -> M2SEModule:
    """``module`` on ``backbone``, with the processor ``datamodule`` encodes with: prompts and model
    agree on the audio placeholders by construction."""
    warn_other_size(cfg.module.get("init_from"), datamodule.processor.tile_size)
    return instantiate(cfg.module, _partial_=True, _convert_="all")(backbone, datamodule.processor)


def precision(value: str) -> str:
    """``auto``: bf16-mixed on CUDA, 32-true otherwise."""
    if value != "auto":
        return value
    return "bf16-mixed" if torch.cuda.is_available() else "32-true"

"""Settings that would otherwise fail after minutes of loading data and model, checked first.

Entry scripts call ``check_before_work(cfg)`` right after Hydra composes the config; each problem is
one ValueError or FileNotFoundError line (``m2se.cli.run`` prints it as ``error: ...``).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from m2se.data.mixtures import mixture_weights
from m2se.data.settings import CHOICES, COUNTS, check_choices, check_counts
from m2se.model.adapters import check_family
from m2se.model.backbone import LoadSettings


def check_before_work(cfg: DictConfig) -> None:
    """``ckpt``/``resume`` are null or exist, and were trained on ``model.backbone``'s family;
    ``module.load``'s words are among their choices; the data config's counts are integers in range
    (``check_counts``) and its word settings among their choices (``check_choices``); every mixture
    names known tasks with valid weights; ``data.mixture`` is one of them. Raises on the first problem."""
    # Trained on another family than model= names: its weights would not fit (or fit wrongly).
    family = OmegaConf.select(cfg, "model.backbone._target_", default=None)
    for key in ("ckpt", "resume"):
        value = cfg.get(key)
        if value is not None and not str(value).strip():  # an unset shell variable: ckpt=$CKPT
            raise ValueError(f"{key}= is empty (null for none)")
        if value is not None and not Path(str(value)).expanduser().exists():
            raise FileNotFoundError(f"{key}={value}: no such checkpoint or adapter folder")
        check_family(value, family)
    load = OmegaConf.select(cfg, "module.load", default=None)
    if isinstance(load, DictConfig):  # its words (dtype, attention, quantization): one line each
        try:
            LoadSettings(**OmegaConf.to_container(load, resolve=True))
        except TypeError as err:  # a key LoadSettings does not have
            raise ValueError(f"module.load: {err}") from None
    data = cfg.get("data") or {}
    check_counts(**{key: data.get(key) for key in COUNTS if key in data})
    processor = data.get("processor") or {}
    given = {**data, **{f"processor.{key}": value for key, value in processor.items()}}
    check_choices({key: given[key] for key in CHOICES if key in given})
    mixtures = data.get("mixtures")
    if "mixtures" in data and not isinstance(mixtures, DictConfig):
        raise ValueError(
            f"data.mixtures must be a mapping of mixture name to {{task: weight}}, got {mixtures!r}"
        )
    if not mixtures:
        return
    mixtures = OmegaConf.to_container(mixtures, resolve=True)
    for name, entries in mixtures.items():
        mixture_weights(name, entries)
    if data.get("mixture") is not None and data.mixture not in mixtures:
        raise ValueError(f"unknown mixture {data.mixture!r} (configured: {', '.join(mixtures)})")

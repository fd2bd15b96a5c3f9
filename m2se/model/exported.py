"""An export folder's record, ``m2se_export.json``: what ``python -m m2se.export`` wrote and the prompt
and media settings the model was trained with. Its presence marks the folder as an m2se export, which
``ckpt=`` then takes as the model itself (``m2se.cli.use_export``).

    {"m2se_export": 1, "format": "native", "dtype": "bfloat16", "base": "...", "ckpt": "...",
     "processor": {"system_prompt": "...", "max_length": 4096, "over_budget": "truncate",
                   "num_frames": 8, "max_tiles": 12, "use_thumbnail": true, "video_resize": "decoder",
                   "tile_size": 448, "tokens_per_tile": 256},
     "settings_from": "RUN/.hydra/config.yaml", "audio": false,
     "backbone": "m2se.model.internvl.InternVL", "model_processor": {}}

``backbone`` is the family (``model.backbone._target_``) and ``model_processor`` its processor's own
options (``model.processor`` but ``_target_`` and ``path``, e.g. a Qwen-VL's ``frame_size``); records
written before they existed are InternVL's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from m2se.files import dumps, read_json_object

MARK = "m2se_export.json"
VERSION = 1
# The processor settings training used, under the config keys that set them (conf/data/shared/datamodule.yaml).
CONFIG_KEYS = {
    "system_prompt": "data.processor.system_prompt",
    "max_length": "data.processor.max_length",
    "over_budget": "data.processor.over_budget",
    "num_frames": "data.num_frames",
    "max_tiles": "data.max_tiles",
    "use_thumbnail": "data.use_thumbnail",
    "video_resize": "data.video_resize",
}
# The family of checkpoints and runs that name none: they were made before a second family existed.
DEFAULT_BACKBONE = "m2se.model.internvl.InternVL"
# What a setting was before its key existed: records and run configs that lack it were made so.
LEGACY = {"video_resize": "pil"}


@dataclass(frozen=True)
class ExportRecord:
    """``processor``: the ``CONFIG_KEYS`` settings, plus ``tile_size`` (px) and ``tokens_per_tile``, which
    the model's config.json fixes. ``settings_from``: the training run's config they were read from, or
    the project defaults' file when no run config was found. ``audio``: the folder holds
    ``audio.safetensors`` + ``audio_config.json``."""

    format: str
    dtype: str
    base: str
    ckpt: str
    processor: dict = field(default_factory=dict)
    settings_from: str = ""
    audio: bool = False
    backbone: str = DEFAULT_BACKBONE
    model_processor: dict = field(default_factory=dict)

    def config_values(self) -> dict[str, object]:
        """Config key → value for every recorded setting a run's config can set (``LEGACY`` values for
        settings older exports did not record)."""
        settings = {**LEGACY, **self.processor}
        values = {key: settings[name] for name, key in CONFIG_KEYS.items() if name in settings}
        return values | {f"model.processor.{name}": value for name, value in self.model_processor.items()}

    def write(self, folder: Path) -> None:
        text = dumps({"m2se_export": VERSION, **asdict(self)}, indent=2, ensure_ascii=False)
        (Path(folder) / MARK).write_text(text + "\n", encoding="utf-8")


def read_export(path: str | Path | None) -> ExportRecord | None:
    """The record of the export folder ``path``; None when ``path`` is not one (no ``m2se_export.json``).
    ValueError naming the file when the record is malformed or of a newer version."""
    if path is None:
        return None
    file = Path(path).expanduser() / MARK
    if not file.is_file():
        return None
    saved = read_json_object(file)
    if saved.get("m2se_export") != VERSION:
        raise ValueError(
            f"{file}: m2se_export {saved.get('m2se_export')!r} is not {VERSION} (another m2se version?)"
        )
    try:
        record = ExportRecord(**{k: v for k, v in saved.items() if k != "m2se_export"})
    except TypeError as err:
        raise ValueError(f"{file}: not an m2se export record ({err})") from None
    if (
        not isinstance(record.processor, dict)
        or not isinstance(record.model_processor, dict)
        or record.format not in ("native", "original")
    ):
        raise ValueError(f"{file}: not an m2se export record (format {record.format!r}, processor)")
    return record

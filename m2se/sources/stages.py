"""Stage files from built task files: ``first_stage.json`` and ``second_stage.json`` plus a manifest.

python -m m2se.sources stages --config conf/sources/emoverse_stages.yaml --out data/emoverse
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import random
import re
from collections import Counter
from pathlib import Path

import yaml

from m2se.data.records import WHERE_DATA, RecordError, load_records
from m2se.files import atomic_file, dumps, first_line, json_problem
from m2se.sources.common import parse_json

MANIFEST = "stages_manifest.json"
STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a file name in --out, nothing more
MAX_CONFIG_NODES = 100_000  # YAML aliases can make a few lines into billions of nodes


class StageConfigError(ValueError):
    """A config that cannot be built; the message names the config file and the entry."""


def _take(entry: dict, available: int, where: str) -> int:
    if ("count" in entry) == ("fraction" in entry):
        raise StageConfigError(f"{where}: give exactly one of count and fraction")
    if "count" in entry:
        count = entry["count"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise StageConfigError(f"{where}: count must be a whole number, got {count!r}")
        if not 0 <= count <= available:
            raise StageConfigError(f"{where}: count {count} but the file has {available} records")
        return count
    fraction = entry["fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise StageConfigError(f"{where}: fraction must be a number, got {fraction!r}")
    if not 0 <= fraction <= 1:
        raise StageConfigError(f"{where}: fraction {fraction} is outside [0, 1]")
    return round(available * fraction)


def _nodes(value: object) -> int:
    """How many values ``value`` holds, counting shared ones each time (stops past the limit)."""
    count, stack = 0, [value]
    while stack and count <= MAX_CONFIG_NODES:
        item = stack.pop()
        count += 1
        stack.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list) else ())
    return count


def _read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise StageConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise StageConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise StageConfigError(f"{path}: not valid YAML{line}") from None
    except RecursionError:  # PyYAML's parser recurses once per level of nesting
        raise StageConfigError(f"{path}: not valid YAML (nested too deeply to parse)") from None
    except ValueError as err:  # a date like 2024-13-01, an integer too long to convert
        raise StageConfigError(f"{path}: not valid YAML ({first_line(err)})") from None
    if not isinstance(config, dict) or not isinstance(config.get("stages"), dict):
        raise StageConfigError(f"{path}: expected a mapping with 'seed' and 'stages'")
    if _nodes(config) > MAX_CONFIG_NODES:
        raise StageConfigError(f"{path}: more than {MAX_CONFIG_NODES} values (aliases repeating aliases?)")
    problem = json_problem(config, "config")
    if problem:
        raise StageConfigError(f"{path}: {problem}")
    try:  # the manifest records the config, so it must be plain JSON
        dumps(config, sort_keys=True)
    except (TypeError, ValueError) as err:  # a date, keys of mixed types
        raise StageConfigError(f"{path}: not plain JSON data ({first_line(err)})") from None
    seed = config.get("seed", 42)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StageConfigError(f"{path}: seed must be a whole number, got {seed!r}")
    for stage, entries in config["stages"].items():
        if not isinstance(stage, str) or not STAGE_NAME.fullmatch(stage) or f"{stage}.json" == MANIFEST:
            raise StageConfigError(
                f"{path}: stage name {stage!r} is not a plain file name (letters, digits, _.-)"
            )
        if not isinstance(entries, list | None):
            raise StageConfigError(f"{path}: stages.{stage}: expected a list of {{file, count | fraction}}")
    return config


def _source(config_path: Path, entry: object, where: str) -> tuple[str, list]:
    """(SHA-256, parsed records) of one config entry's task file, after checking every record."""
    if not isinstance(entry, dict) or "file" not in entry:
        raise StageConfigError(f"{where}: expected {{file, count | fraction}}")
    file, task = entry["file"], entry.get("task")
    if not isinstance(file, str) or not isinstance(task, str | None):
        raise StageConfigError(f"{where}: file and task must be strings")
    try:
        path = (config_path.parent / file).resolve()
        found = path.is_file()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
        found = False
    if not found:
        raise StageConfigError(f"{where}: no such file {file} {WHERE_DATA}")
    try:
        data = path.read_bytes()
        items = parse_json(data.decode("utf-8"))
    except OSError as err:
        raise StageConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    except ValueError as err:
        raise StageConfigError(f"{path}: not a readable JSON file ({first_line(err)})") from None
    if not isinstance(items, list):
        raise StageConfigError(f"{path}: not a readable JSON file (expected a list of records)")
    load_records(path, task=task, require_media=False)  # malformed input stops here
    return hashlib.sha256(data).hexdigest(), items


def _checked(tmp: Path, target: Path) -> Counter:
    """Records per task of a stage written to ``tmp``, loaded as training will load ``target``."""
    try:
        return Counter(r.task for r in load_records(tmp, require_media=False).records)
    except RecordError as err:  # two sources sharing a record, say: name the stage, not the temporary
        raise StageConfigError(str(err).replace(tmp.name, target.name)) from None


def build_stages(config_path: str | Path, out_dir: str | Path) -> dict:
    """Write every stage file of the config into ``out_dir`` with the manifest; returns the manifest.

    The config (YAML or JSON: ``seed`` and ``stages``) names, per stage, the task files it draws from
    and how much of each: ``count`` records, or a ``fraction`` of the file (EmoVerse's "high" share =
    1.0, "low" = e.g. 0.25); an entry's optional ``task`` reads its records as that task (as
    ``load_records`` does) when they are checked. Source paths resolve against the config file's folder. Records are drawn without replacement with a seeded
    generator and each stage is shuffled, so the same config, seed and source files give byte-identical
    stage files. ``stages_manifest.json`` beside them records the seed, the config, each source's
    SHA-256 and record count, and each stage's counts per task and SHA-256, so a dataset can be checked
    and rebuilt bit for bit.

    Nothing is written unless every stage can be: each stage file is written beside its target, loaded
    back as training will load it (a record drawn twice, from two entries of one file, is refused) and
    renamed into place. Stage names are plain file names; the config must be plain JSON data (no
    dates), as the manifest holds it.

    Raises ``StageConfigError`` (a ValueError naming the config file and the entry) for a config that
    cannot be built, ``RecordError`` for a source file with malformed records, and OSError (naming the
    file) for an output that cannot be written.
    """
    config_path, out = Path(config_path), Path(out_dir)
    config = _read_config(config_path)
    seed = config.get("seed", 42)
    sources: dict[str, dict] = {}
    manifest = {"seed": seed, "config": config, "sources": sources, "stages": {}}
    chosen_by_stage: dict[str, list] = {}
    for stage, entries in config["stages"].items():
        chosen: list[dict] = []
        for i, entry in enumerate(entries or []):
            where = f"{config_path.name}: stages.{stage}[{i}]"
            sha256, items = _source(config_path, entry, where)
            sources.setdefault(entry["file"], {"sha256": sha256, "records": len(items)})
            count = _take(entry, len(items), where)
            rng = random.Random(f"{seed}/{stage}/{entry['file']}")
            chosen += [items[j] for j in sorted(rng.sample(range(len(items)), count))]
        if not chosen:  # training would refuse the empty file; refused here, before anything is written
            raise StageConfigError(
                f"{config_path.name}: stages.{stage}: no records (no entries, or counts of 0)"
            )
        random.Random(f"{seed}/{stage}").shuffle(chosen)
        chosen_by_stage[stage] = chosen
    targets = [out / f"{stage}.json" for stage in chosen_by_stage] + [out / MANIFEST]
    for target in targets:  # found now, before any file is renamed into place
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(target))
    with contextlib.ExitStack() as renames:  # on leaving: the stage files, then the manifest
        manifest_tmp = renames.enter_context(atomic_file(out / MANIFEST))
        for stage, chosen in chosen_by_stage.items():
            target = out / f"{stage}.json"
            tmp = renames.enter_context(atomic_file(target))
            text = dumps(chosen, ensure_ascii=False, indent=1) + "\n"
            tmp.write_text(text, encoding="utf-8")
            manifest["stages"][stage] = {
                "file": target.name,
                "records": len(chosen),
                "tasks": dict(sorted(_checked(tmp, target).items())),
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            }
        manifest_tmp.write_text(dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, required=True, help="YAML/JSON: seed and stages → [{file, count|fraction}]"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the stage files and the manifest")

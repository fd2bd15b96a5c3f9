"""Stage files from built task files: ``first_stage.json`` and ``second_stage.json`` plus a manifest.

    python -m m2se.data.build stages --config conf/build/emoverse_stages.yaml --out data/emoverse

The config (YAML or JSON) names, per stage, the task files it draws from and how much of each:
``count`` records, or a ``fraction`` of the file (EmoVerse's "high" share = 1.0, "low" = e.g. 0.25).
Records are drawn without replacement with a seeded generator and each stage is shuffled, so the same
config, seed and source files give byte-identical stage files. ``stages_manifest.json`` beside them
records the seed, the config, each source's SHA-256 and record count, and each stage's counts per task
and SHA-256, so a dataset can be checked and rebuilt bit for bit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections import Counter
from pathlib import Path

import yaml

from m2se.data.records import load_records

MANIFEST = "stages_manifest.json"


class StageConfigError(ValueError):
    """A config that cannot be built; the message names the config file and the entry."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _take(entry: dict, available: int, where: str) -> int:
    if ("count" in entry) == ("fraction" in entry):
        raise StageConfigError(f"{where}: give exactly one of count and fraction")
    if "count" in entry:
        count = int(entry["count"])
        if not 0 <= count <= available:
            raise StageConfigError(f"{where}: count {count} but the file has {available} records")
        return count
    fraction = float(entry["fraction"])
    if not 0 <= fraction <= 1:
        raise StageConfigError(f"{where}: fraction {fraction} is outside [0, 1]")
    return round(available * fraction)


def _read_config(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise StageConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise StageConfigError(f"{path}: not valid YAML{line}") from None


def build_stages(config_path: str | Path, out_dir: str | Path) -> dict:
    """Write every stage file of the config into ``out_dir`` with the manifest; returns the manifest.

    Source paths in the config resolve against the config file's folder.
    """
    config_path, out = Path(config_path), Path(out_dir)
    config = _read_config(config_path)
    if not isinstance(config, dict) or not isinstance(config.get("stages"), dict):
        raise StageConfigError(f"{config_path}: expected a mapping with 'seed' and 'stages'")
    seed = int(config.get("seed", 42))
    out.mkdir(parents=True, exist_ok=True)
    sources: dict[str, dict] = {}
    manifest = {"seed": seed, "config": config, "sources": sources, "stages": {}}
    for stage, entries in config["stages"].items():
        chosen: list[dict] = []
        for i, entry in enumerate(entries or []):
            where = f"{config_path.name}: stages.{stage}[{i}]"
            if not isinstance(entry, dict) or "file" not in entry:
                raise StageConfigError(f"{where}: expected {{file, count | fraction}}")
            path = (config_path.parent / entry["file"]).resolve()
            if not path.is_file():
                raise StageConfigError(f"{where}: no such file {entry['file']}")
            try:
                items = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise StageConfigError(f"{path}: not a readable JSON file ({err})") from None
            load_records(path, task=entry.get("task"), require_media=False)  # malformed input stops here
            sources.setdefault(entry["file"], {"sha256": _sha256(path), "records": len(items)})
            count = _take(entry, len(items), where)
            rng = random.Random(f"{seed}/{stage}/{entry['file']}")
            chosen += [items[j] for j in sorted(rng.sample(range(len(items)), count))]
        random.Random(f"{seed}/{stage}").shuffle(chosen)
        target = out / f"{stage}.json"
        target.write_text(json.dumps(chosen, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        tasks = Counter(r.task for r in load_records(target, require_media=False).records)
        manifest["stages"][stage] = {
            "file": target.name,
            "records": len(chosen),
            "tasks": dict(sorted(tasks.items())),
            "sha256": _sha256(target),
        }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, required=True, help="YAML/JSON: seed and stages → [{file, count|fraction}]"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the stage files and the manifest")


def main(args: argparse.Namespace) -> int:
    manifest = build_stages(args.config, args.out)
    for info in manifest["stages"].values():
        tasks = ", ".join(f"{t} {n}" for t, n in info["tasks"].items())
        print(f"{args.out / info['file']}: {info['records']} records ({tasks})")
    print(f"manifest: {args.out / MANIFEST} (seed {manifest['seed']})")
    return 0

"""MERR annotations (Emotion-LLaMA) → eri records whose answer is the clip's caption.

    python -m m2se.sources merr MERR_fine_grained.json --out merr_eri.json --media-prefix MER2023/video/ \\
        --transcript transcription_en_all.csv --test-list test3_label.csv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from m2se.files import json_problem
from m2se.sources.common import (
    BuildResult,
    InputError,
    Inputs,
    check_choice,
    input_paths,
    progress,
    read_json,
    read_text,
    table_rows,
)
from m2se.sources.mer2023 import ClipMedia, add_media_arguments
from m2se.tasks import TASKS

CAPTIONS = {"coarse": "caption", "fine": "smp_reason_caption"}
UTTERANCE_KEYS = ("text", "sentence", "subtitle", "english")
MEDIA_SUFFIXES = {".mp4", ".avi", ".mkv", ".jpg", ".png", ".wav", ".npy"}
SHOWN = 5  # overlapping clip names quoted in the refusal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--caption",
        choices=tuple(CAPTIONS),
        help="coarse: 'caption'; fine: 'smp_reason_caption' (default)",
    )
    parser.add_argument("--transcript", type=Path, metavar="CSV", help="utterances: name + text column")
    parser.add_argument(
        "--transcript-column",
        help="text column of --transcript (default: sentence; MER2023's table: english)",
    )
    parser.add_argument(
        "--test-list",
        type=Path,
        metavar="FILE",
        help="test clips (CSV with a 'name' column, or one name per line): refuse to build any of them",
    )
    parser.add_argument(
        "--allow-overlap", action="store_true", help="keep clips that are in --test-list, with a warning"
    )
    add_media_arguments(parser)


def clip_name(text: str) -> str:
    """A clip name without a media suffix (``a.mp4`` and ``a`` are the same clip)."""
    name = text.strip()
    return Path(name).stem if Path(name).suffix.lower() in MEDIA_SUFFIXES else name


def read_test_list(path: Path) -> set[str]:
    """The clip names of a test list; one without any is an InputError (a guard that guards nothing)."""
    if path.suffix in (".csv", ".tsv"):
        names = {clip_name(row["name"]) for _, row in table_rows(path, ("name",), BuildResult())}
    else:
        names = {clip_name(line.split()[0]) for line in read_text(path).splitlines() if line.strip()}
    names.discard("")
    if not names:
        raise InputError(f"{path}: no clip names in the test list")
    return names


def read_transcripts(path: Path, column: str, result: BuildResult) -> dict[str, str]:
    subtitles: dict[str, str] = {}
    for _, row in table_rows(path, ("name", column), result):
        subtitles.setdefault(clip_name(row["name"]), " ".join(row[column].split()))
    return subtitles


def items(path: Path) -> Iterator[tuple[str, str, object]]:
    """(``file:clip``, clip name, annotation) for each clip of a MERR JSON file."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object keyed by clip name (MERR's layout)")
    for name, item in progress(data.items(), path.name, total=len(data)):
        yield f"{path.name}:{name}", clip_name(name), item


def utterance_of(item: dict, name: str, subtitles: dict[str, str] | None) -> str | None:
    """The clip's utterance: its transcript row (None when it has none), else the item's own field."""
    if subtitles is not None:
        return subtitles.get(name)
    found = (item.get(k) for k in UTTERANCE_KEYS)
    return " ".join(next((u for u in found if isinstance(u, str) and u.strip()), "").split())


def check_overlap(built: dict[str, Path], test_clips: set[str], test_list: Path, allow: bool) -> None:
    """Refuse (InputError) when built clips are test clips, or warn when ``allow``."""
    overlap = [name for name in built if name in test_clips]
    if not overlap:
        return
    shown = ", ".join(overlap[:SHOWN]) + (", ..." if len(overlap) > SHOWN else "")
    what = f"{len(overlap)} clip(s) also in the test list {test_list.name} ({shown})"
    if not allow:
        raise InputError(
            f"{built[overlap[0]]}: {what}: training on them leaks the test set "
            "(nothing written; drop them, or pass --allow-overlap to keep them)"
        )
    print(f"warning: {what} kept (--allow-overlap)", file=sys.stderr)


def build_merr(
    inputs: Inputs,
    *,
    caption: Literal["fine", "coarse"] = "fine",
    transcript: str | Path | None = None,
    transcript_column: str = "sentence",
    test_list: str | Path | None = None,
    allow_overlap: bool = False,
    media: Literal["video", "frame"] = "video",
    audio_prefix: str | None = None,
    features: Sequence[tuple[str, str]] = (),
    media_prefix: str = "",
    media_root: str | Path | None = None,
) -> BuildResult:
    """eri records from MERR's JSON (Emotion-LLaMA's annotations): the answer is the clip's caption.

    Each input is an object keyed by clip name (``sample_00000047``) whose values hold the captions:
    ``caption`` (coarse, MERR_coarse_grained.json) and ``smp_reason_caption`` (fine,
    MERR_fine_grained.json); ``caption`` picks one. The query quotes the clip's utterance: from the
    ``transcript`` CSV (columns ``name`` and ``transcript_column``: ``sentence`` as in Emotion-LLaMA's
    transcription_en_all.csv, ``english`` for MER2023's table), else from the item's own ``text``,
    ``sentence``, ``subtitle`` or ``english`` field, else empty. The item's pseudo-label
    (``pseu_emotion``) is not used.

    Leakage guard: MERR clips come from the MER2023 pool its test clips were drawn from. ``test_list``
    (a CSV with a ``name`` column, like the MER2023 test label table, or one clip name per line, first
    word only, so Emotion-LLaMA's ``NAME FRAMES LABEL`` lists work) makes the build raise when a built
    clip is in it; ``allow_overlap`` keeps them and prints a warning with the count on stderr.

    ``media``, ``audio_prefix`` and ``features`` place each clip's media as ``build_mer2023`` does.

    Returns the records; clips without the caption, without a transcript row (with ``transcript``),
    annotated twice, or holding a value JSON cannot carry are counted skips. Raises ``InputError`` when a
    file cannot be read or has the wrong layout, when the test list names no clip, and when built clips
    are test clips (unless ``allow_overlap``); ValueError for a ``caption`` or ``media`` not listed above.
    """
    check_choice("caption", caption, CAPTIONS)
    result = BuildResult(media_prefix=media_prefix, media_root=media_root)
    clips, key = ClipMedia.of_options(media, audio_prefix, features), CAPTIONS[caption]
    test_clips = read_test_list(Path(test_list)) if test_list is not None else set()
    subtitles = (
        read_transcripts(Path(transcript), transcript_column, result) if transcript is not None else None
    )
    built: dict[str, Path] = {}  # clip name -> the file it came from
    for path in input_paths(inputs):
        for where, name, item in items(path):
            if not isinstance(item, dict):
                result.skip(where, f"expected an object, got {type(item).__name__}", "broken row")
                continue
            problem = json_problem({name: item}, "clips")
            if problem:
                result.skip(where, f"unusable value: {problem}", "bad value")
                continue
            caption = item.get(key)
            if not isinstance(caption, str) or not caption.strip():
                result.skip(where, f"no '{key}' caption", "no caption")
                continue
            if name in built:
                result.skip(where, f"clip {name} is annotated twice", "repeated clip")
                continue
            utterance = utterance_of(item, name, subtitles)
            if utterance is None:
                result.skip(where, f"clip {name} has no row in {Path(transcript).name}", "no transcript")
                continue
            media_key, file, extra = clips.of(name)
            query, response = TASKS["eri"].query(utterance), " ".join(caption.split())
            if result.add(where, query, response, media_key, file, **extra):
                built[name] = path
    if test_list is not None:
        check_overlap(built, test_clips, Path(test_list), allow_overlap)
    return result

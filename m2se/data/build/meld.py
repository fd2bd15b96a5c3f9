"""MELD CSVs → erc records (one per utterance, its clip ``dia{D}_utt{U}.mp4``).

    python -m m2se.data.build meld test_sent_emo.csv --out meld_test.json --media-prefix MELD/test/

Reads the official CSVs (``Utterance, Emotion, Dialogue_ID, Utterance_ID`` among their columns). Their
text is UTF-8/ASCII with stray cp1252 bytes (0x92 for ’); those bytes are decoded as cp1252, which is how
the released EmoVerse queries show them. MELD's labels map to the erc answers (``joy`` → ``Joy.``). Rows
whose ids are not ASCII digits (``²`` passes ``str.isdigit``) are counted skips.
"""

from __future__ import annotations

import argparse

from m2se.data.build.common import BuildResult, table_rows, whole_number
from m2se.tasks import TASKS

COLUMNS = ("Utterance", "Emotion", "Dialogue_ID", "Utterance_ID")
LABELS = {
    label.lower(): label for label in TASKS["erc"].labels
}  # neutral joy sadness anger surprise fear disgust


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> BuildResult:
    result = BuildResult.for_args(args)
    task = TASKS["erc"]
    for path in args.inputs:
        for where, row in table_rows(path, COLUMNS, result):
            emotion = row["Emotion"].strip().lower()
            if emotion not in LABELS:
                result.skip(
                    where,
                    f"unknown MELD emotion {row['Emotion']!r} (expected one of {', '.join(LABELS)})",
                    "unknown label",
                )
                continue
            dialogue, utterance = whole_number(row["Dialogue_ID"]), whole_number(row["Utterance_ID"])
            if dialogue is None or utterance is None:
                ids = f"{row['Dialogue_ID'].strip()!r}/{row['Utterance_ID'].strip()!r}"
                result.skip(where, f"bad Dialogue_ID/Utterance_ID {ids}", "broken row")
                continue
            clip = f"dia{dialogue}_utt{utterance}.mp4"
            result.add(where, task.query(row["Utterance"]), task.format(LABELS[emotion]), "videos", clip)
    return result

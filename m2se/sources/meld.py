"""MELD CSVs → erc records (one per utterance, its clip ``dia{D}_utt{U}.mp4``).

python -m m2se.sources meld test_sent_emo.csv --out meld_test.json --media-prefix MELD/test/
"""

from __future__ import annotations

from pathlib import Path

from m2se.sources.common import BuildResult, Inputs, input_paths, table_rows, whole_number
from m2se.tasks import TASKS

COLUMNS = ("Utterance", "Emotion", "Dialogue_ID", "Utterance_ID")
LABELS = {
    label.lower(): label for label in TASKS["erc"].labels
}  # neutral joy sadness anger surprise fear disgust


def build_meld(
    inputs: Inputs, *, media_prefix: str = "", media_root: str | Path | None = None
) -> BuildResult:
    """erc records from MELD's official CSVs (``train_sent_emo.csv``, ``dev_sent_emo.csv``, ...).

    Each file needs the columns ``Utterance, Emotion, Dialogue_ID, Utterance_ID`` (others are ignored).
    Their text is UTF-8/ASCII with stray cp1252 bytes (0x92 for ’); those bytes are decoded as cp1252,
    which is how the released EmoVerse queries show them. MELD's labels map to the erc answers (``joy``
    → ``Joy.``, EmoVerse's answer form). Each record's video is ``media_prefix + "dia{D}_utt{U}.mp4"``,
    the clip names of MELD's release; with ``media_root``, a row whose clip is not there is skipped.

    Returns the records in file order; unknown labels, ids that are not ASCII digits (``²`` passes
    ``str.isdigit``), broken rows and duplicates are counted skips in the result. Raises ``InputError``
    when a file cannot be read or lacks a column.
    """
    result = BuildResult(media_prefix=media_prefix, media_root=media_root)
    task = TASKS["erc"]
    for path in input_paths(inputs):
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

"""Prediction files in other tools' formats, written beside metrics.json."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from m2se.files import atomic_file, dumps
from m2se.tasks.prediction import Prediction

_DIALOGUE = re.compile(r"dia_?([0-9]{1,9})_?utt_?([0-9]{1,9})", re.IGNORECASE)


def write_semeval(rows: Sequence[Prediction], path: str | Path) -> tuple[int, int]:
    """ECPE predictions per conversation, as SemEval-2024 Task 3 subtask 2 submissions are written:
    ``[{"conversation_ID": 1375, "emotion-cause_pairs": [["5_surprise", "2"], ...]}, ...]``.

    The conversation comes from ``meta["conversation_ID"]`` or the clip name (``dia1375utt5.mp4``);
    rows with neither are left out and counted; with no conversation at all no file is written. Returns
    (conversations written, rows left out).
    """
    conversations: dict[int, list] = {}
    left_out = 0
    for row in rows:
        conversation = row.meta.get("conversation_ID")
        if conversation is None:
            match = next((m for m in map(_DIALOGUE.search, row.media) if m), None)
            conversation = int(match[1]) if match else None
        if conversation is None:
            left_out += 1
            continue
        pairs = conversations.setdefault(int(conversation), [])
        for target, emotion, cause in row.parsed or []:
            pair = [f"{target}_{emotion}", str(cause)]
            if pair not in pairs:
                pairs.append(pair)
    export = [{"conversation_ID": c, "emotion-cause_pairs": p} for c, p in sorted(conversations.items())]
    if not export:  # nothing to group by: no file rather than an empty submission
        return 0, left_out
    with atomic_file(path) as tmp:  # a conversation a line
        tmp.write_text("[\n" + ",\n".join(dumps(c) for c in export) + "\n]\n")
    return len(export), left_out

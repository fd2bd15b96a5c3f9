"""The prompts of the conversation-level tasks, assembled from a dialogue (docs/PROTOCOL.md §3).

InstructERC's three prompts (``erc_query``, ``speaker_query``, ``predict_query``) and m2se's EmoVerse-style
variant of the main one (``emoverse_query``). A dialogue is a list of ``Turn`` in spoken order; the
utterance at index ``t`` is the target. Window ``N`` (InstructERC: 12) is the ``N`` previous utterances
plus the current one, as InstructERC slices it (``max(t - N, 0) .. t``).

Speakers are ``Speaker_k``, ``k`` the speaker's index by order of first appearance in the dialogue
(0-based), or their real names (``names="real"``). Texts hold no tab or newline (the builder turns them
into spaces): those separate the pieces of a prompt.

Demonstrations (``format_demos``) go right after ``IERC_HEAD``, the slot InstructERC reserves for them::

    Here are some similar utterances with their emotional labels: "<text>" is <label>. "<text>" is <label>.

one space between pieces and a trailing space, so ``IERC_CONTEXT`` follows; labels are in the record's
label space (native or unified).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from m2se.dialogue.labels import speaker_slots
from m2se.templates import (
    DIALOGUE_CONTEXT,
    DIALOGUE_INSTRUCTION,
    IERC_CONTEXT,
    IERC_HEAD,
    IERC_PREDICT,
    IERC_SELECT,
    IERC_SPEAKER,
)

SpeakerNames = Literal["slot", "real"]
DEMOS_HEAD = "Here are some similar utterances with their emotional labels: "
DEFAULT_WINDOW = 12


@dataclass(frozen=True)
class Turn:
    """One utterance: ``speaker`` is the real name, ``emotion`` the corpus's native label."""

    dialogue_id: str
    turn: int
    speaker: str
    text: str
    emotion: str


def slots(dialogue: Sequence[Turn]) -> list[int]:
    """Each turn's speaker slot: the speaker's index by order of first appearance."""
    seen: dict[str, int] = {}
    return [seen.setdefault(turn.speaker, len(seen)) for turn in dialogue]


def speaker_tags(dialogue: Sequence[Turn], names: SpeakerNames = "slot") -> list[str]:
    """How each turn's speaker is written in a prompt: ``Speaker_k`` or the real name."""
    if names == "real":
        return [turn.speaker for turn in dialogue]
    return [f"Speaker_{k}" for k in slots(dialogue)]


def format_demos(demos: Sequence[tuple[str, str]]) -> str:
    """(text, label) demonstrations → the text inserted after ``IERC_HEAD`` ("" without demos)."""
    if not demos:
        return ""
    return DEMOS_HEAD + "".join(f'"{text}" is {label}. ' for text, label in demos)


def _lines(dialogue: Sequence[Turn], start: int, stop: int, names: SpeakerNames) -> str:
    tags = speaker_tags(dialogue, names)
    return "".join(f'\t {tags[i]}:"{dialogue[i].text}"' for i in range(start, stop))


def erc_query(
    dialogue: Sequence[Turn],
    t: int,
    labels: Sequence[str],
    window: int = DEFAULT_WINDOW,
    names: SpeakerNames = "slot",
    demos: str = "",
) -> str:
    """InstructERC's main query for turn ``t``; ``demos`` is ``format_demos``'s text. Answer: the bare label."""
    context = _lines(dialogue, max(t - window, 0), t + 1, names)
    # InstructERC takes the context's last tab-separated piece: the current line, leading space kept.
    target = f' {speaker_tags(dialogue, names)[t]}:"{dialogue[t].text}"'
    select = IERC_SELECT.format(target=target, labels=", ".join(labels))
    return IERC_HEAD + demos + IERC_CONTEXT + context + " ### " + select


def speaker_query(text: str, dataset: str) -> str:
    """InstructERC's speaker identification query (no context). Answer: ``Speaker_k``."""
    speakers = ", ".join(f"Speaker_{k}" for k in range(speaker_slots(dataset)))
    return IERC_HEAD + IERC_SPEAKER.format(text=text, speakers=speakers)


def predict_query(
    dialogue: Sequence[Turn],
    t: int,
    labels: Sequence[str],
    window: int = DEFAULT_WINDOW,
    names: SpeakerNames = "slot",
) -> str:
    """InstructERC's emotion prediction query for turn ``t > 0``: the window's history without turn ``t``.

    The next speaker is the bare slot number (``<1>``, as InstructERC writes it) or the real name.
    Answer: turn ``t``'s label. Training only.
    """
    if t < 1:
        raise ValueError("emotion prediction needs a history: t must be > 0")
    history = _lines(dialogue, max(t - window, 0), t, names)
    slot = dialogue[t].speaker if names == "real" else str(slots(dialogue)[t])
    return IERC_HEAD + IERC_CONTEXT + history + IERC_PREDICT.format(slot=slot, labels=", ".join(labels))


def join_or(labels: Sequence[str]) -> str:
    """``a, b or c``: how EmoVerse instructions list labels."""
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def emoverse_query(
    dialogue: Sequence[Turn],
    t: int,
    labels: Sequence[str],
    window: int = DEFAULT_WINDOW,
    names: SpeakerNames = "slot",
) -> str:
    """m2se's EmoVerse-style query: one ``Speaker_k: text`` line per previous turn of the window, then the
    EmoVerse ERC query of turn ``t`` listing ``labels`` (no previous turn: an empty context line)."""
    tags = speaker_tags(dialogue, names)
    lines = "\n".join(f"{tags[i]}: {dialogue[i].text}" for i in range(max(t - window, 0), t))
    instruction = DIALOGUE_INSTRUCTION.format(labels=join_or(labels))
    return f"{DIALOGUE_CONTEXT}{lines}\nThe person says: '{dialogue[t].text}' <emotion> {instruction}"


def emoverse_answer(label: str) -> str:
    """EmoVerse's answer style: first letter upper-cased, final dot (``joyful`` → ``Joyful.``)."""
    return label[:1].upper() + label[1:] + "."

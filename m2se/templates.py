"""Prompt texts, verbatim: EmoVerse's ECPE template (and ``ecpe_query``), InstructERC's prompts
(docs/PROTOCOL.md §3; ``m2se.dialogue.prompts`` assembles them) and Emotion-LLaMA's MER2023 instruction.
``m2se.tasks`` recognises queries by them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ECPE_HEAD = (
    "Below is a conversation containing multiple utterances from different speakers, \n"
    "along with the corresponding emotion label for each utterance. \n"
    "Your task is to identify the indices of the candidate utterances that elicited the emotion "
    "in the target utterance.\n"
)
ECPE_TAIL = (
    'You need to return the answer as, for example, "3_surprise,1", \n'
    "which means that the emotion of surprise in the third sentence is related to the first sentence, \n"
    "and if the emotion is related to more than one sentence, separate the sentences with \u201c;\u201d.\n"
    "The emotion-cause indices of the target utterance are:"
)

# InstructERC's prompts (docs/PROTOCOL.md §3), verbatim; m2se.dialogue.prompts assembles them.
IERC_HEAD = "Now you are expert of sentiment and emotional analysis. "
IERC_CONTEXT = "The following conversation noted between '### ###' involves several speakers. ### "
IERC_SELECT = "Please select the emotional label of <{target}> from <{labels}>:"
IERC_SPEAKER = "Please select the Speaker label of the utterance <Speaker: {text}> from <{speakers}>:"
IERC_PREDICT = (
    "###Based on the above historical utterances, next utterance is spoken by <{slot}>, "
    "please predict the emotion states of <{slot}> from <{labels}>:"
)
# m2se's EmoVerse-style dialogue template: the context lines, then an EmoVerse query whose instruction
# lists the corpus's labels (``DIALOGUE_INSTRUCTION``).
DIALOGUE_CONTEXT = "Conversation context:\n"
DIALOGUE_INSTRUCTION = "Please determine which emotion label in the video represents: {labels}."

MER2023_INSTRUCTION = (
    "[emotion] Please determine which emotion label in the video represents: "
    "happy, sad, neutral, angry, worried, surprise, fear, contempt, doubt. "
)


@dataclass(frozen=True)
class Utterance:
    speaker: str
    text: str
    emotion: str


def ecpe_query(conversation: Sequence[Utterance], target: int) -> str:
    """The released ECPE query for the 1-based ``target`` utterance (emotions given, candidates before it)."""
    lines = [f"{i}_{u.emotion}. {u.speaker}: {u.text}" for i, u in enumerate(conversation, start=1)]
    return (
        ECPE_HEAD
        + "Input conversation:"
        + "\n".join(lines)
        + "\nCandidate utterances:"
        + "\n".join(lines[: target - 1])
        + "\nTarget utterance:"
        + lines[target - 1]
        + "\n"
        + ECPE_TAIL
    )

"""The tasks m2se knows, one entry each: adding a task of an existing answer format is one entry here
(or one ``m2se.tasks.register_task`` call in your own code) plus its data config.

The six EmoVerse tasks (docs/PROTOCOL.md §3). Queries of every task but ECPE read
``The person says: '<utterance>' <identifier> <instruction>``; ECPE has its own template.
Conversation-level tasks after InstructERC (``erc_dialog``, ``speaker_id``, ``emotion_predict``; their
prompts are built by ``m2se.dialogue.prompts``) and Emotion-LLaMA's ``mer2023``.
"""

from __future__ import annotations

from m2se.tasks.formats import CausePairs, FreeText, Labels, OpenLabels, Phrases
from m2se.tasks.scorers import Acc2, LabelMetrics
from m2se.tasks.task import Task
from m2se.templates import ECPE_TAIL, IERC_PREDICT, IERC_SELECT, IERC_SPEAKER, MER2023_INSTRUCTION

EMOTION_ALIASES = {"sad": "Sadness", "angry": "Anger"}

_CATALOG = (
    Task(
        "msa",
        # EmoVerse's released scorer reads any unmatched answer as Negative.
        Labels(("Positive", "Negative"), fallback="Negative", reference_modes=("emoverse",)),
        "Please determine which sentiment label in the video represents: positive or negative.",
        "<sentiment>",
        max_new_tokens=8,
        metrics=(LabelMetrics(per_class="recall"), Acc2()),
    ),
    Task(
        "mer",
        Labels(
            ("Happy", "Sadness", "Surprise", "Disgust", "Anger", "Fear", "Neutral"),
            EMOTION_ALIASES,
            reference_modes=("emoverse",),
        ),
        "Please determine which emotion label in the video represents: "
        "anger, sad, surprise, disgust, happy, neutral or fear.",
        "<emotion>",
        max_new_tokens=8,
    ),
    Task(
        "erc",
        Labels(
            ("Anger", "Sadness", "Surprise", "Disgust", "Joy", "Neutral", "Fear"),
            EMOTION_ALIASES,
            reference_modes=("emoverse",),
        ),
        "Please determine which emotion label in the video represents: "
        "anger, sadness, surprise, disgust, joy, neutral or fear.",
        "<emotion>",
        max_new_tokens=8,
    ),
    # EmoVerse never released the FER identifier; `<expression>` is m2se's choice.
    Task(
        "fer",
        Phrases(),
        "Detail the facial expressions used in the image.",
        "<expression>",
        max_new_tokens=48,
    ),
    Task(
        "eri",
        FreeText(),
        "What is the emotional state of the person in the video? Please tell me the reason.",
        "<reason>",
        max_new_tokens=256,
    ),
    Task("ecpe", CausePairs(), ECPE_TAIL, max_new_tokens=48),
    # InstructERC's tasks: the label list is each record's own.
    Task("erc_dialog", OpenLabels(), IERC_SELECT, needs_media=False, max_new_tokens=8),
    Task(
        "speaker_id",
        Labels(tuple(f"Speaker_{k}" for k in range(9))),
        IERC_SPEAKER,
        needs_media=False,
        max_new_tokens=8,
        utterance_queries=False,  # the instruction holds the conversation's {text} and {speakers}
    ),
    Task("emotion_predict", OpenLabels(), IERC_PREDICT, needs_media=False, max_new_tokens=8),
    # Emotion-LLaMA's MER2023 recognition prompt (its video/feature placeholders are the processor's).
    Task(
        "mer2023",
        # Emotion-LLaMA's scorer reads an answer whose last word is no label as neutral.
        Labels(
            ("neutral", "angry", "happy", "sad", "worried", "surprise"),
            fallback="neutral",
            reference_modes=("emotion_llama",),
        ),
        MER2023_INSTRUCTION,
        "[emotion]",
        template="The person in video says: {utterance}.  " + MER2023_INSTRUCTION,
        max_new_tokens=8,
    ),
)

TASKS: dict[str, Task] = {task.name: task for task in _CATALOG}
EMOVERSE_TASKS = ("msa", "mer", "erc", "fer", "eri", "ecpe")


def get_task(name: str) -> Task:
    """The task called ``name``; ValueError naming the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None

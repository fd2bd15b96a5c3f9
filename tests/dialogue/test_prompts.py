"""InstructERC's prompts, assembled from a dialogue: expected strings are written out by hand."""

import pytest

from m2se.dialogue.labels import NATIVE
from m2se.dialogue.prompts import (
    Turn,
    emoverse_answer,
    emoverse_query,
    erc_query,
    format_demos,
    predict_query,
    slots,
    speaker_query,
)
from m2se.tasks import infer_task

MELD = NATIVE["meld"]
LABELS = "neutral, surprise, fear, sad, joyful, disgust, angry"
HEAD = "Now you are expert of sentiment and emotional analysis. "
CONTEXT = "The following conversation noted between '### ###' involves several speakers. ### "
DIALOGUE = [
    Turn("7", 0, "Ross", "Hey.", "neutral"),
    Turn("7", 1, "Joey", "Hi Ross.", "neutral"),
    Turn("7", 2, "Ross", "How you doin'?", "joyful"),
    Turn("7", 3, "Rachel", "Fine!", "surprise"),
]


def test_window_smaller_than_the_dialogue_keeps_the_last_utterances():
    query = erc_query(DIALOGUE, 2, MELD, window=1)
    assert query == (
        "Now you are expert of sentiment and emotional analysis. The following conversation noted between "
        '\'### ###\' involves several speakers. ### \t Speaker_1:"Hi Ross."\t Speaker_0:"How you doin\'?" ### '
        'Please select the emotional label of < Speaker_0:"How you doin\'?"> from '
        "<neutral, surprise, fear, sad, joyful, disgust, angry>:"
    )
    assert infer_task(query) == "erc_dialog"


def test_window_larger_than_the_dialogue_shows_it_all():
    assert erc_query(DIALOGUE, 3, MELD, window=12) == (
        HEAD + CONTEXT + '\t Speaker_0:"Hey."\t Speaker_1:"Hi Ross."\t Speaker_0:"How you doin\'?"'
        '\t Speaker_2:"Fine!" ### Please select the emotional label of < Speaker_2:"Fine!"> from <'
        + LABELS
        + ">:"
    )
    assert erc_query(DIALOGUE, 0, MELD, window=0) == (
        HEAD + CONTEXT + '\t Speaker_0:"Hey." ### Please select the emotional label of < Speaker_0:"Hey."> '
        "from <" + LABELS + ">:"
    )


def test_speakers_are_slots_by_first_appearance_or_real_names():
    assert slots(DIALOGUE) == [0, 1, 0, 2]
    assert erc_query(DIALOGUE, 1, ("a", "b"), names="real") == (
        HEAD + CONTEXT + '\t Ross:"Hey."\t Joey:"Hi Ross." ### '
        'Please select the emotional label of < Joey:"Hi Ross."> from <a, b>:'
    )


def test_demonstrations_go_right_after_the_head():
    demos = format_demos([("I love it.", "joyful"), ('He said "no".', "angry")])
    assert demos == (
        'Here are some similar utterances with their emotional labels: "I love it." is joyful. '
        '"He said "no"." is angry. '
    )
    assert format_demos([]) == ""
    assert erc_query(DIALOGUE, 0, ("a", "b"), demos=demos) == (
        HEAD + demos + CONTEXT + '\t Speaker_0:"Hey." ### '
        'Please select the emotional label of < Speaker_0:"Hey."> from <a, b>:'
    )


def test_speaker_identification_offers_two_slots_for_iemocap_nine_otherwise():
    query = speaker_query("Fine!", "iemocap")
    assert query == (
        "Now you are expert of sentiment and emotional analysis. Please select the Speaker label of the "
        "utterance <Speaker: Fine!> from <Speaker_0, Speaker_1>:"
    )
    assert speaker_query("Fine!", "meld").endswith(
        "<Speaker: Fine!> from <Speaker_0, Speaker_1, Speaker_2, Speaker_3, Speaker_4, Speaker_5, "
        "Speaker_6, Speaker_7, Speaker_8>:"
    )
    assert infer_task(query) == "speaker_id"


def test_emotion_prediction_shows_the_history_without_the_current_utterance():
    query = predict_query(DIALOGUE, 2, MELD, window=1)
    assert query == (
        HEAD + CONTEXT + '\t Speaker_1:"Hi Ross."###Based on the above historical utterances, next utterance '
        "is spoken by <0>, please predict the emotion states of <0> from <" + LABELS + ">:"
    )
    assert infer_task(query) == "emotion_predict"
    assert predict_query(DIALOGUE, 3, ("a", "b"), window=1, names="real") == (
        HEAD + CONTEXT + '\t Ross:"How you doin\'?"###Based on the above historical utterances, next '
        "utterance is spoken by <Rachel>, please predict the emotion states of <Rachel> from <a, b>:"
    )
    with pytest.raises(ValueError, match="t must be > 0"):
        predict_query(DIALOGUE, 0, MELD)


def test_emoverse_template():
    query = emoverse_query(DIALOGUE, 2, ("neutral", "joyful", "angry"), window=1)
    assert query == (
        "Conversation context:\nSpeaker_1: Hi Ross.\nThe person says: 'How you doin'?' <emotion> "
        "Please determine which emotion label in the video represents: neutral, joyful or angry."
    )
    assert emoverse_query(DIALOGUE, 0, ("neutral", "joyful"), window=3) == (
        "Conversation context:\n\nThe person says: 'Hey.' <emotion> "
        "Please determine which emotion label in the video represents: neutral or joyful."
    )
    assert infer_task(query) == "erc_dialog"
    assert emoverse_answer("joyful") == "Joyful." and emoverse_answer("Mad") == "Mad."

"""python -m m2se.sources dialogue: MELD, EmoryNLP and JSONL dialogues → erc_dialog (+ auxiliary) records."""

import json
import re
import zlib

import numpy as np
import pytest
from test_build_cli import MELD_HEADER, build

from m2se.data.records import load_records
from m2se.dialogue.labels import unified_labels
from m2se.dialogue.retrieval import DemoRetriever
from m2se.sources import dialogue

HEAD = "Now you are expert of sentiment and emotional analysis. "
CONTEXT = "The following conversation noted between '### ###' involves several speakers. ### "
MELD_LABELS = "neutral, surprise, fear, sad, joyful, disgust, angry"
# (dialogue, utterance, speaker, text, MELD emotion)
ROWS = [
    (0, 0, "Ross", "Hey.", "neutral"),
    (0, 1, "Joey", "Hi Ross.", "joy"),
    (0, 2, "Ross", "You ate my sandwich!", "anger"),
    (1, 0, "Monica", "Guess what?", "surprise"),
    (1, 1, "Chandler", "What?", "neutral"),
]


def meld_csv(path, rows=ROWS, extra=""):
    lines = [f'{i},"{text}",{who},{emo},x,{d},{u},1,1,a,b' for i, (d, u, who, text, emo) in enumerate(rows)]
    path.write_text(MELD_HEADER + "\n".join(lines) + "\n" + extra)
    return path


def written(out, tasks):
    """The records, after checking they load (media required) as exactly ``tasks``."""
    loaded = load_records(out, require_media=True)
    assert {r.task for r in loaded.records} == set(tasks)
    return json.loads(out.read_text(encoding="utf-8"))


def dialog(capsys, source, out, options: str, *paths):
    """``python -m m2se.sources dialogue SOURCE --out OUT`` + whitespace-split ``options`` + ``paths``."""
    return build(capsys, "dialogue", source, "--out", out, *options.split(), *paths)


def test_meld_dialogue_records(tmp_path, capsys):
    code, out, _ = dialog(
        capsys, meld_csv(tmp_path / "train.csv"), tmp_path / "o.json", "--format meld --window 1"
    )
    assert code == 0 and "5 record(s)" in out
    records = written(tmp_path / "o.json", {"erc_dialog"})
    third = records[2]
    assert third["query"] == (
        HEAD + CONTEXT + '\t Speaker_1:"Hi Ross."\t Speaker_0:"You ate my sandwich!" ### Please select the '
        'emotional label of < Speaker_0:"You ate my sandwich!"> from <' + MELD_LABELS + ">:"
    )
    assert third == third | {"response": "angry", "dataset": "meld", "dialogue_id": "0", "turn": 2}
    assert third["labels"] == MELD_LABELS.split(", ") and third["label_space"] == "native"
    assert third["native"] == "angry" and "videos" not in third
    assert [r["response"] for r in records] == ["neutral", "joyful", "angry", "surprise", "neutral"]


def test_auxiliary_records(tmp_path, capsys):
    code, out, _ = dialog(
        capsys, meld_csv(tmp_path / "m.csv"), tmp_path / "o.json", "--format meld --aux speaker,predict"
    )
    assert code == 0 and "emotion_predict 3, erc_dialog 5, speaker_id 5" in out
    records = written(tmp_path / "o.json", {"erc_dialog", "speaker_id", "emotion_predict"})
    speaker = [r for r in records if "Speaker label" in r["query"]]
    assert [r["response"] for r in speaker] == [f"Speaker_{k}" for k in (0, 1, 0, 0, 1)]
    assert speaker[0]["labels"] == [f"Speaker_{k}" for k in range(9)]
    predict = [r for r in records if "predict the emotion" in r["query"]]
    assert [(r["dialogue_id"], r["turn"], r["response"]) for r in predict] == [
        ("0", 1, "joyful"),
        ("0", 2, "angry"),
        ("1", 1, "neutral"),
    ]
    assert predict[0]["query"] == (
        HEAD + CONTEXT + '\t Speaker_0:"Hey."###Based on the above historical utterances, next utterance is '
        "spoken by <1>, please predict the emotion states of <1> from <" + MELD_LABELS + ">:"
    )


def test_unified_labels_keep_the_native_gold(tmp_path, capsys):
    dialog(capsys, meld_csv(tmp_path / "m.csv"), tmp_path / "o.json", "--format meld --labels unified")
    surprise = written(tmp_path / "o.json", {"erc_dialog"})[3]
    assert surprise["response"] == "powerful" and surprise["native"] == "surprise"
    assert surprise["labels"] == list(unified_labels("meld")) and surprise["label_space"] == "unified"
    assert surprise["query"].endswith("from <neutral, powerful, fear, sad, joyful, disgust, mad>:")


def test_emoverse_template_and_real_names(tmp_path, capsys):
    dialog(
        capsys,
        meld_csv(tmp_path / "m.csv"),
        tmp_path / "o.json",
        "--format meld --template emoverse --speaker-names real",
    )
    second = written(tmp_path / "o.json", {"erc_dialog"})[1]
    assert second["query"] == (
        "Conversation context:\nRoss: Hey.\nThe person says: 'Hi Ross.' <emotion> Please determine which "
        "emotion label in the video represents: neutral, surprise, fear, sad, joyful, disgust or angry."
    )
    assert second["response"] == "Joyful."


def test_media_only_on_erc_and_speaker_records(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    for name in ("dia0_utt0", "dia0_utt1", "dia1_utt0", "dia1_utt1"):  # dia0_utt2 is missing
        (tmp_path / "clips" / f"{name}.mp4").write_bytes(b"")
    code, out, _ = dialog(
        capsys,
        meld_csv(tmp_path / "m.csv"),
        tmp_path / "o.json",
        "--format meld --aux speaker,predict --media-prefix MELD/",
        "--media-root",
        tmp_path / "clips",
    )
    assert code == 0 and "m.csv:4: missing media" in out and "missing media: 1" in out
    records = json.loads((tmp_path / "o.json").read_text())
    assert records[0]["videos"] == ["MELD/dia0_utt0.mp4"]
    assert all(("videos" in r) != ("predict the emotion" in r["query"]) for r in records)


def test_turns_that_read_alike_in_different_dialogues_are_all_kept(tmp_path, capsys):
    rows = [(0, 0, "Ross", "Hi.", "neutral"), (1, 0, "Joey", "Hi.", "neutral"), (1, 1, "Ross", "Hey", "joy")]
    code, out, _ = dialog(
        capsys, meld_csv(tmp_path / "m.csv", rows), tmp_path / "o.json", "--format meld --aux speaker"
    )
    assert code == 0 and "6 record(s)" in out  # dialogue 0 and 1 both open with Speaker_0 saying "Hi."
    records = written(tmp_path / "o.json", {"erc_dialog", "speaker_id"})
    assert len(records) == 6


def test_meld_bad_rows_are_counted_and_missing_columns_stop(tmp_path, capsys):
    bad_rows = [(2, 0, "Ross", "Yo", "happy"), (2, 1, "Ross", "", "joy"), (2, 1, "Ross", "x", "joy")]
    rows = [*ROWS, *bad_rows, (2, 1, "Joey", "again", "joy")]
    csv = meld_csv(tmp_path / "m.csv", rows, extra='9,"a",Ross,joy,x,two,0,1,1,a,b\n')
    code, out, _ = dialog(capsys, csv, tmp_path / "o.json", "--format meld")
    assert code == 0 and "6 record(s)" in out
    assert "m.csv:7: unknown label 'happy' (expected one of neutral, surprise," in out
    assert "m.csv:8: missing text" in out and "m.csv:10: turn 1 of dialogue 2 seen twice" in out
    assert "m.csv:11: bad Dialogue_ID/Utterance_ID 'two'/'0'" in out
    code, _, _ = dialog(capsys, csv, tmp_path / "s.json", "--format meld --strict")
    assert code == 2 and not (tmp_path / "s.json").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("Utterance,Emotion,Dialogue_ID,Utterance_ID\nhi,joy,0,0\n")
    code, _, err = dialog(capsys, bad, tmp_path / "o.json", "--format meld")
    assert code == 2 and err == (
        f"error: {bad}: missing column(s) Speaker (found: Utterance, Emotion, Dialogue_ID, Utterance_ID)\n"
    )


def emorynlp_json(path, scenes):
    """An EmoryNLP release: one episode, ``scenes`` = {scene_id: [(speakers, transcript, emotion)]}."""
    keys = ("speakers", "transcript", "emotion")
    scenes = [
        {"scene_id": sid, "utterances": [dict(zip(keys, u, strict=True)) for u in items]}
        for sid, items in scenes.items()
    ]
    path.write_text(json.dumps({"episodes": [{"episode_id": "s01_e01", "scenes": scenes}]}))
    return path


def test_emorynlp_scenes_are_dialogues(tmp_path, capsys):
    source = emorynlp_json(
        tmp_path / "trn.json",
        {
            "s01_e01_c01": [
                (["Monica Geller"], "There's nothing to tell!", "Joyful"),
                (["Joey Tribbiani", "Ross"], "C'mon, you're going out with the guy!", "Powerful"),
                ([], "All right Joey, be nice.", "neutral"),
                (["Ross"], "Hi.", "Happy"),
            ],
        },
    )
    code, out, _ = dialog(capsys, source, tmp_path / "o.json", "--format emorynlp --aux speaker")
    assert code == 0 and "trn.json:episodes[0].scenes[0].utterances[3]: unknown label 'Happy'" in out
    records = written(tmp_path / "o.json", {"erc_dialog", "speaker_id"})
    erc = [r for r in records if "emotional label" in r["query"]]
    assert [r["response"] for r in erc] == ["Joyful", "Powerful", "Neutral"]  # native spelling restored
    assert erc[0]["dataset"] == "emorynlp" and erc[0]["dialogue_id"] == "s01_e01_c01"
    assert erc[2]["query"].endswith(
        '### Please select the emotional label of < Speaker_2:"All right Joey, be nice."> from '
        "<Joyful, Mad, Peaceful, Neutral, Sad, Powerful, Scared>:"
    )
    not_release = tmp_path / "x.json"
    not_release.write_text("[]")
    code, _, err = dialog(capsys, not_release, tmp_path / "o.json", "--format emorynlp")
    assert code == 2 and err.startswith(f"error: {not_release}: not an EmoryNLP release")


def jsonl(path, items):
    path.write_text("\n".join(i if isinstance(i, str) else json.dumps(i) for i in items) + "\n")
    return path


def turn(dialogue, t, speaker, text, emotion):
    return {"dialogue_id": dialogue, "turn": t, "speaker": speaker, "text": text, "emotion": emotion}


def test_jsonl_orders_turns_and_learns_labels_of_an_unknown_dataset(tmp_path, capsys):
    source = jsonl(
        tmp_path / "d.jsonl",
        [
            turn("x", 2, "B", "Third", "calm"),
            turn("x", 0, "A", "First", "tense"),
            turn("x", 1, "B", "Second\twith a tab", "calm"),
            "{broken",
            turn("x", "3", "A", "t", "calm"),
            turn("x", 4, "A", "   ", "calm"),
            turn(7, 5, "A", "Other", ""),
        ],
    )
    code, out, _ = dialog(capsys, source, tmp_path / "o.json", "--format jsonl --dataset mine")
    assert code == 0 and "3 record(s)" in out
    assert "d.jsonl:4: bad JSON line" in out and "d.jsonl:5: turn must be an integer, got '3'" in out
    assert "d.jsonl:6: missing text" in out and "d.jsonl:7: missing emotion" in out
    records = written(tmp_path / "o.json", {"erc_dialog"})
    assert [r["turn"] for r in records] == [0, 1, 2] and records[0]["labels"] == ["calm", "tense"]
    assert records[2]["query"] == (
        HEAD + CONTEXT + '\t Speaker_0:"First"\t Speaker_1:"Second with a tab"\t Speaker_1:"Third" ### '
        'Please select the emotional label of < Speaker_1:"Third"> from <calm, tense>:'
    )
    code, _, err = dialog(capsys, tmp_path / "nope.jsonl", tmp_path / "o.json", "--format jsonl --dataset x")
    assert code == 2 and err.startswith(f"error: {tmp_path / 'nope.jsonl'}: no such file (see docs/DATA.md)")


def test_speaker_slots_beyond_the_offered_skip_only_the_speaker_record(tmp_path, capsys):
    items = [turn("s1", i, who, f"line {i}", "happy") for i, who in enumerate(["M", "F", "Other"])]
    code, out, _ = dialog(
        capsys,
        jsonl(tmp_path / "d.jsonl", items),
        tmp_path / "o.json",
        "--format jsonl --dataset iemocap --aux speaker",
    )
    assert code == 0 and "erc_dialog 3, speaker_id 2" in out
    assert "d.jsonl:3: speaker slot 2 beyond the 2 offered (no speaker_id record)" in out


JSONL_MELD = "--format jsonl --dataset meld"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("--format jsonl", "--format jsonl needs --dataset NAME"),
        ("--format jsonl --dataset mine --labels unified", "no unified labels for 'mine'"),
        (f"{JSONL_MELD} --media-prefix M/", "--format jsonl has no clips"),
        (f"{JSONL_MELD} --demos 2", "--demos K and --demo-pool FILE go together"),
        (f"{JSONL_MELD} --window -1", "--window and --demos must be >= 0"),
        (f"{JSONL_MELD} --demos 1 --demo-pool p.jsonl --template emoverse", "only --template instructerc"),
        (f"{JSONL_MELD} --demos 1 --demo-pool dev.jsonl", "dev.jsonl: named like an evaluation split"),
    ],
)
def test_option_errors_are_one_line(tmp_path, capsys, argv, message):
    source = jsonl(tmp_path / "d.jsonl", [turn("x", 0, "A", "Hi", "neutral")])
    code, _, err = dialog(capsys, source, tmp_path / "o.json", argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.json").exists()


def bag_of_words(texts):
    vectors = np.full((len(texts), 64), 1e-3, dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            vectors[row, zlib.crc32(word.encode()) % 64] += 1
    return vectors


@pytest.fixture
def small_embedder(monkeypatch, tmp_path):
    """The builder's retriever, with a bag-of-words embedder instead of MiniLM."""
    monkeypatch.setattr(
        dialogue, "DemoRetriever", lambda model: DemoRetriever("bow", tmp_path / "cache", embed=bag_of_words)
    )


DEMO_ROWS = [
    (0, 0, "Ross", "You ate my sandwich!", "anger"),
    (0, 1, "Joey", "You ate my sandwich? Sorry.", "sadness"),
    (1, 0, "Monica", "Somebody ate my sandwich!", "anger"),
    (1, 1, "Rachel", "The weather is nice.", "joy"),
    (2, 0, "Phoebe", "Nice weather.", "joy"),
]


def test_demonstrations_come_from_other_dialogues_of_the_pool(tmp_path, capsys, small_embedder):
    train = meld_csv(tmp_path / "train.csv", DEMO_ROWS)
    code, _, _ = dialog(
        capsys, train, tmp_path / "o.json", "--format meld --demos 1 --labels unified", "--demo-pool", train
    )
    assert code == 0
    records = written(tmp_path / "o.json", {"erc_dialog"})
    assert records[0]["query"] == (
        HEAD + 'Here are some similar utterances with their emotional labels: "Somebody ate my sandwich!" '
        "is mad. " + CONTEXT + '\t Speaker_0:"You ate my sandwich!" ### Please select the emotional label of '
        '< Speaker_0:"You ate my sandwich!"> from <neutral, powerful, fear, sad, joyful, disgust, mad>:'
    )
    assert '"Nice weather." is joyful.' in records[3]["query"]  # not its own dialogue's utterance


def test_a_pool_sharing_dialogues_with_an_evaluation_input_is_refused(tmp_path, capsys, small_embedder):
    test = meld_csv(tmp_path / "test_sent_emo.csv", DEMO_ROWS)
    pool = meld_csv(tmp_path / "pool.csv", DEMO_ROWS[2:])
    code, _, err = dialog(capsys, test, tmp_path / "o.json", "--format meld --demos 2", "--demo-pool", pool)
    assert code == 2 and f"{pool}: holds dialogue 1 of {test} (an evaluation split)" in err
    other = meld_csv(tmp_path / "train.csv", [(5, 0, "Ross", "Somebody ate my sandwich!", "anger")])
    code, _, _ = dialog(capsys, test, tmp_path / "o.json", "--format meld --demos 2", "--demo-pool", other)
    assert (
        code == 0
        and '"Somebody ate my sandwich!" is angry. The following'
        in written(tmp_path / "o.json", {"erc_dialog"})[0]["query"]
    )

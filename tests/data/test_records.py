import json

import pytest

from m2se.data.records import RecordError, load_records
from m2se.tasks import TASKS

ERC = TASKS["erc"]


def erc(text="Hi .", label="Joy.", **media):
    return {"query": ERC.query(text), "response": label, **(media or {"videos": ["clips/a.mp4"]})}


def write(path, items, jsonl=False):
    if jsonl:
        path.write_text("\n".join(i if isinstance(i, str) else json.dumps(i) for i in items) + "\n")
    else:
        path.write_text(json.dumps(items))
    return path


@pytest.mark.parametrize("jsonl", [False, True])
def test_loads_json_and_jsonl_with_media_root(tmp_path, jsonl):
    path = write(tmp_path / ("d.jsonl" if jsonl else "d.json"), [erc(), erc("Yo .", images=["f.png"])], jsonl)
    records = load_records(path).records
    assert [r.task for r in records] == ["erc", "erc"]
    assert records[0].videos == (tmp_path / "clips/a.mp4",)
    assert records[1].images == (tmp_path / "f.png",) and records[1].videos == ()
    other = load_records(path, media_root="/data/meld").records
    assert str(other[0].videos[0]) == "/data/meld/clips/a.mp4"


def test_keeps_extra_fields_as_meta(tmp_path):
    path = write(tmp_path / "d.json", [{**erc(), "score": -1.4}])
    assert load_records(path).records[0].meta == {"score": -1.4}


MALFORMED = [
    ('{"query": "x"', "d.jsonl:2: bad JSON line", "bad json"),
    ({"query": ERC.query("a"), "videos": ["a.mp4"]}, "d.jsonl:2: 'response' is missing", "missing response"),
    ({"query": ERC.query("b"), "response": "Joy."}, "d.jsonl:2: no media", "no media"),
    ({**erc("c"), "response": "Joyful."}, "d.jsonl:2: unknown label 'Joyful.' for task erc", "unknown label"),
    (
        {"query": "How are you?", "response": "Fine.", "images": ["a.png"]},
        "d.jsonl:2: query fits no task",
        "unknown task",
    ),
    (erc(), "d.jsonl:2: duplicate record", "duplicate"),
    ({**erc("d"), "videos": [3]}, "d.jsonl:2: 'videos' must be a path", "bad media field"),
    ([1, 2], "d.jsonl:2: expected an object, got list", "not an object"),
]


@pytest.mark.parametrize("bad,message,reason", MALFORMED, ids=[m[2] for m in MALFORMED])
def test_malformed_record_raises_one_line_or_is_counted(tmp_path, bad, message, reason):
    path = write(tmp_path / "d.jsonl", [erc(), bad, erc("fine")], jsonl=True)
    with pytest.raises(RecordError) as info:
        load_records(path)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    result = load_records(path, skip_errors=True)
    assert len(result.records) == 2
    assert result.skipped == {reason: 1}
    assert result.errors[0].startswith(message)


def test_explicit_task_and_text_only(tmp_path):
    path = write(tmp_path / "d.json", [{"query": "free text", "response": "Neutral."}])
    with pytest.raises(RecordError, match="no media"):
        load_records(path, task="erc")
    assert load_records(path, task="erc", require_media=False).records[0].task == "erc"


def test_file_level_errors(tmp_path):
    with pytest.raises(RecordError, match=r"absent.json: no such file \(see docs/DATA.md\)$"):
        load_records(tmp_path / "absent.json")
    broken = tmp_path / "b.json"
    broken.write_text('[{"query": "x",}]')
    with pytest.raises(RecordError, match=r"b.json:line 1: invalid JSON"):
        load_records(broken, skip_errors=True)


def test_duplicates_across_files(tmp_path):
    a = write(tmp_path / "a.json", [erc()])
    b = write(tmp_path / "b.json", [erc()])
    seen = set()
    load_records(a, seen=seen)
    assert load_records(b, seen=seen, skip_errors=True).skipped == {"duplicate": 1}


def test_released_emoverse_files_load_unchanged(emoverse_dir):
    meld = load_records(emoverse_dir / "meld_test_data.json")
    ecf = load_records(emoverse_dir / "ecf2_caption_test.json")
    assert len(meld.records) == 2610 and {r.task for r in meld.records} == {"erc"}
    assert len(ecf.records) == 1821 and {r.task for r in ecf.records} == {"ecpe"}
    assert sum(r.response == "" for r in ecf.records) == 75
    assert meld.records[0].videos[0] == emoverse_dir / "MELD/output_repeated_splits_test/dia0_utt0.mp4"
    assert {ERC.parse(r.response) for r in meld.records} == set(ERC.labels)


def test_dialogue_records_may_be_text_only(tmp_path):
    from test_tasks import SPEAKER

    path = tmp_path / "d.json"
    no_media = {"query": ERC.query("Hi ."), "response": "Joy."}  # EmoVerse tasks still need media
    path.write_text(json.dumps([{"query": SPEAKER, "response": "Speaker_1"}, no_media]))
    loaded = load_records(path, skip_errors=True)
    assert [r.task for r in loaded.records] == ["speaker_id"] and loaded.skipped == {"no media": 1}


def test_media_paths_stay_inside_the_media_root(tmp_path):
    root = tmp_path / "data"
    (root / "clips").mkdir(parents=True)
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"x")
    (root / "clips/link.mp4").symlink_to(outside)
    (root / "clips/inner.mp4").symlink_to(root / "clips/a.mp4")  # a link inside the root is fine
    bad = {
        "../../etc/passwd": "leads outside the media root",
        str(outside): "leads outside the media root",
        "clips/link.mp4": "leads outside the media root",
        "clips/../../secret.mp4": "leads outside the media root",
        "clips/a\x00.mp4": "cannot be resolved",
    }
    for path_in_record, message in bad.items():
        path = write(root / "d.json", [erc(videos=[path_in_record])])
        with pytest.raises(RecordError, match=rf"d.json:0: 'videos' path .* {message}"):
            load_records(path)
        result = load_records(path, skip_errors=True)
        assert result.records == [] and sum(result.skipped.values()) == 1
    path = write(
        root / "d.json", [erc(videos=["clips/inner.mp4"]), erc("b", videos=["clips/../clips/a.mp4"])]
    )
    assert len(load_records(path).records) == 2
    for key, value in (("images", ["../x.png"]), ("audio", "/tmp/a.wav"), ("features", {"face": "../f.npy"})):
        path = write(root / "d.json", [{**erc(), key: value}])
        with pytest.raises(RecordError, match=f"'{key}' path .* outside the media root"):
            load_records(path)
    # Users who keep media elsewhere opt in (data.allow_media_outside_root).
    path = write(root / "d.json", [erc(videos=[str(outside)]), erc("b", videos=["clips/link.mp4"])])
    assert load_records(path, outside_ok=True).records[0].videos == (outside,)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("query", "Hi \ud800 .", "query has an unpaired UTF-16 surrogate"),
        ("meta", {"a": json.loads("[" * 40 + "]" * 40)}, "nests deeper than 32"),
        ("score", float("nan"), "score is nan"),
        ("score", "high", "'score' must be a finite number, got 'high'"),
        ("score", True, "'score' must be a finite number"),
        ("conversation_ID", "²", "'conversation_ID' must be an integer, got '²'"),
        ("conversation_ID", 1.5, "'conversation_ID' must be an integer"),
    ],
)
def test_unusable_values_and_metadata_name_the_record(tmp_path, field, value, message):
    item = erc("Hi \ud800 .") if field == "query" else {**erc(), field: value}
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(erc()) + "\n" + json.dumps(item) + "\n")  # json.dumps writes NaN and \ud800
    with pytest.raises(RecordError, match=rf"d.jsonl:2: .*{message}"):
        load_records(path)


def test_runaway_nesting_and_line_separators(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(RecordError, match="d.json:line 1: invalid JSON \\(nested too deeply"):
        load_records(path)
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(erc("a\u2028b"), ensure_ascii=False) + "\n" + "[" * 50_000 + "\n")
    result = load_records(path, skip_errors=True)
    assert result.skipped == {"bad json": 1} and result.records[0].query == ERC.query("a\u2028b")


def test_a_score_beyond_float_range_names_the_record(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("[" + json.dumps(erc())[:-1] + ', "score": 1' + "0" * 400 + "}]")
    with pytest.raises(RecordError, match="d.json:0: 'score' must be a finite number"):
        load_records(path)


def test_a_key_given_twice_is_refused_and_a_byte_order_mark_is_no_content(tmp_path):
    query = TASKS["erc"].query("Hi .")
    twice = (
        f'[{{"query": {json.dumps(query)}, "response": "Joy.", "response": "Anger.", "videos": ["a.mp4"]}}]'
    )
    (tmp_path / "twice.json").write_text(twice)
    with pytest.raises(RecordError, match="duplicate key 'response'"):  # Python kept Anger., other tools Joy.
        load_records(tmp_path / "twice.json", require_media=False)
    record = {"query": query, "response": "Joy.", "videos": ["a.mp4"]}
    (tmp_path / "bom.json").write_text("\ufeff" + json.dumps([record]), encoding="utf-8")
    assert [r.response for r in load_records(tmp_path / "bom.json", require_media=False).records] == ["Joy."]


def test_open_labels_that_read_the_same_are_refused(tmp_path):
    meta = {"dataset": "custom", "labels": ["Happy", "happy", "sad"], "native": "sad"}
    assert "not distinct" in TASKS["erc_dialog"].check_meta(meta)
    assert TASKS["erc_dialog"].check_meta({**meta, "labels": ["Happy", "Sad"], "native": "Sad"}) is None

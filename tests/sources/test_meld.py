import csv
import io
import json

from test_build_cli import MELD_HEADER, build, built

from m2se.sources.meld import LABELS

PREFIX = "MELD/output_repeated_splits_test/"
HEAD, TAIL = "The person says: '", "' <emotion> "
CP1252 = "’‘…—“”"  # written as their cp1252 bytes, the way MELD's CSVs carry them


def released_rows(records: list[dict]) -> bytes:
    """A MELD CSV (bytes, with stray cp1252 bytes) holding the utterances of released records."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for i, record in enumerate(records):
        utterance = record["query"][len(HEAD) : record["query"].index(TAIL)]
        name = record["videos"][0].removeprefix(PREFIX).removesuffix(".mp4")
        dialogue, utterance_id = name.removeprefix("dia").split("_utt")
        label = record["response"].rstrip(".").lower()
        writer.writerow([i, utterance, "Ross", label, "x", dialogue, utterance_id, 1, 1, "0", "1"])
    data = (MELD_HEADER + text.getvalue()).encode()
    for char in CP1252:
        data = data.replace(char.encode(), char.encode("cp1252"))
    return data


def test_labels_cover_meld():
    assert set(LABELS) == {"neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust"}


def test_builds_the_released_meld_test_file_exactly(emoverse_dir, tmp_path, capsys):
    released = json.loads((emoverse_dir / "meld_test_data.json").read_text(encoding="utf-8"))
    data = released_rows(released)
    assert b"you\x92re coffee mugs" in data and "é".encode() in data
    (tmp_path / "test_sent_emo.csv").write_bytes(data)
    code, out, _ = build(
        capsys, "meld", tmp_path / "test_sent_emo.csv", "--out", tmp_path / "o.json", "--media-prefix", PREFIX
    )
    assert code == 0, out
    records = built(tmp_path / "o.json", "erc")
    assert records[0] == released[0]
    assert records == released  # all 2,610


def test_ids_that_are_not_ascii_digits_are_counted_skips(tmp_path, capsys):
    rows = [
        "1,hi,Joey,joy,x,²,0,1,1,a,b",
        "2,hi,Joey,joy,x,١,1,1,1,a,b",
        f"3,hi,Joey,joy,x,0,{'9' * 5000},1,1,a,b",
    ]
    (tmp_path / "m.csv").write_text(MELD_HEADER + "\n".join([*rows, "4,yo,Joey,joy,x,0,3,1,1,a,b"]) + "\n")
    code, out, _ = build(capsys, "meld", tmp_path / "m.csv", "--out", tmp_path / "o.json")
    assert code == 0 and "broken row: 3" in out and "m.csv:2: bad Dialogue_ID/Utterance_ID '²'/'0'" in out
    assert [r["videos"] for r in built(tmp_path / "o.json", "erc")] == [["dia0_utt3.mp4"]]

"""Every builder, fed what it should never see, ends with a written file or one ``error:`` line.

Each input file of each source gets, from hypothesis, derandomized (every run tries the same inputs):

- 30 byte strings as the whole file: random bytes, the well-formed file with random bytes spliced in,
  and picked ones (runaway nesting, a field over csv's size limit, NUL, BOM, stray cp1252 bytes);
- JSON inputs: 60 well-formed documents with 1-3 places (a leaf, or any value, the whole included)
  replaced by an arbitrary JSON value: null, booleans, integers, floats with NaN and infinities, text
  with unpaired surrogates, lists, objects, nesting deeper than 32;
- CSV/TSV inputs: 30 tables with one more row, the good row with arbitrary cells ("²", "١", "nan", "inf",
  140,000-character and 5,000-digit fields, quotes, line breaks, NUL), written by csv or joined raw.

Inputs per source: meld 60; ecf 180 (with and without --end-to-end); mosei 120 (label table and
--emotions); fer 120 (OpenFace table and --transcripts); eri 150 (TSV and JSON); dialogue 240 (meld 60,
emorynlp 90, jsonl 90); mer2023 120 (both tables); merr 180 (JSON, --transcript, --test-list); stages
180 (config and a task file). 1,350 builds, about 10 s on 2 cores. Each must return 0 with a JSON file
(no NaN, every record a string query and response) or 2 with exactly one stderr line starting
``error: ``; an exception escaping ``main`` fails the test.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_build_cli import MELD_HEADER

from m2se.sources.cli import main
from m2se.tasks import TASKS

EXAMPLES = 30
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Case:
    """A well-formed build: ``argv`` (``OUT`` is the output) naming ``files`` and ``target``, where the
    fuzz goes: a JSON document ``doc``, a table (``header`` and one good ``row``, comma-separated), or
    neither: a clip list."""

    argv: str
    target: str
    doc: object = None
    header: str = ""
    row: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def text(self, doc: object = None, rows: list[tuple[list[str], bool]] = ()) -> bytes:
        """The target's bytes: ``doc`` as JSON (JSONL: one line per item), or the header, the good row
        and ``rows`` (each written by csv, or joined raw when its flag is set)."""
        if self.doc is not None:
            lines = doc if isinstance(doc, list) and self.target.endswith(".jsonl") else [doc]
            return "\n".join(json.dumps(item) for item in lines).encode()
        if not self.header:
            return b"sample_9 30 sad\n"
        delimiter = "\t" if self.target.endswith(".tsv") else ","
        text = io.StringIO()
        writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
        writer.writerows([self.header.split(","), self.row.split(",")])
        for cells, raw in rows:
            text.write(delimiter.join(cells) + "\n") if raw else writer.writerow(cells)
        return text.getvalue().encode("utf-8", "surrogatepass")

    def good(self) -> bytes:
        return self.text(self.doc)


def _utterance(i: int, speaker: str, text: str, emotion: str) -> dict:
    return {
        "utterance_ID": i,
        "text": text,
        "speaker": speaker,
        "emotion": emotion,
        "video_name": f"u{i}.mp4",
    }


ECF = [{"conversation_ID": 1, "conversation": [_utterance(1, "Ross", "Hi.", "neutral")]}]
ECF[0]["conversation"].append(_utterance(2, "Joey", "Yay!", "joy"))
ECF[0]["emotion-cause_pairs"] = [["2_joy", "1"], ["2_joy", "2"]]
SCENE = {
    "scene_id": "s01_e01_c01",
    "utterances": [{"speakers": ["Ross"], "transcript": "Hi.", "emotion": "Joyful"}],
}
SCENE["utterances"].append({"speakers": ["Joey", "Ross"], "transcript": "Hey!", "emotion": "Mad"})
EMORYNLP = {"episodes": [{"scenes": [SCENE]}]}
JSONL = [{"dialogue_id": "d", "turn": 0, "speaker": "A", "text": "Hi.", "emotion": "calm"}]
JSONL.append({"dialogue_id": "d", "turn": 1, "speaker": "B", "text": "Go away.", "emotion": "tense"})
MSA = {"query": TASKS["msa"].query("hi", quote='"'), "response": "Positive.", "images": ["a.png"], "score": 1}
TASK_FILE = [MSA, MSA | {"response": "Negative.", "score": -1.0}]
STAGES = {"seed": 1, "stages": {"first_stage": [{"file": "src.json", "count": 1}], "second_stage": []}}
MERR = {"sample_1": {"smp_reason_caption": "He smiles.", "text": "hi"}, "sample_2": {"caption": "x"}}
MOSEI = "video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode"
MOSEI_ROW = "v1,0,I love it,1.5,0,0,0,Positive,test"
OPENFACE, FRAME = "frame, face_id, success, AU04_r, AU12_r, AU04_c, AU12_c, AU28_c", "1,0,1,1.5,3,1,1,1"
MELD, MELD_ROW = MELD_HEADER.strip(), "1,hi,Joey,joy,positive,0,0,1,1,a,b"
CLIPS = {"m.json": json.dumps({"sample_1": {"smp_reason_caption": "Calm."}})}

CASES = {
    "meld": Case("meld m.csv --out OUT", "m.csv", header=MELD, row=MELD_ROW),
    "ecf": Case("ecf e.json --out OUT", "e.json", doc=ECF),
    "ecf-end-to-end": Case("ecf e.json --out OUT --end-to-end", "e.json", doc=ECF),
    "mosei": Case("mosei label.csv --out OUT", "label.csv", header=MOSEI, row=MOSEI_ROW),
    "mosei-emotions": Case(
        "mosei label.csv --emotions emo.csv --out OUT",
        "emo.csv",
        header="video_id,clip_id,happy,sad,anger,surprise,disgust,fear",
        row="v1,0,2,0,0,0,0,0",
        files={"label.csv": f"{MOSEI}\n{MOSEI_ROW}\n"},
    ),
    "fer": Case("fer v1_0.csv --out OUT", "v1_0.csv", header=OPENFACE, row=FRAME),
    "fer-transcripts": Case(
        "fer v1_0.csv --out OUT --transcripts t.csv",
        "t.csv",
        header="clip,text",
        row="v1_0,Great news",
        files={"v1_0.csv": f"{OPENFACE}\n{FRAME}\n"},
    ),
    "eri-csv": Case(
        "eri r.tsv --out OUT --utterance-column text", "r.tsv", header="clip,reason,text", row="v1,Hm.,hi"
    ),
    "eri-json": Case(
        "eri r.json --out OUT --utterance-column text",
        "r.json",
        doc=[{"clip": "v1", "reason": "Calm.", "text": "hi"}, {"clip": 7, "reason": "Sad.", "text": None}],
    ),
    "dialogue-meld": Case(
        "dialogue train.csv --format meld --aux speaker,predict --out OUT",
        "train.csv",
        header=MELD,
        row=MELD_ROW,
    ),
    "dialogue-emorynlp": Case(
        "dialogue trn.json --format emorynlp --labels unified --out OUT", "trn.json", doc=EMORYNLP
    ),
    "dialogue-jsonl": Case(
        "dialogue d.jsonl --format jsonl --dataset mine --template emoverse --out OUT", "d.jsonl", doc=JSONL
    ),
    "mer2023-labels": Case(
        "mer2023 label.csv t.csv --out OUT --features a=A/",
        "label.csv",
        header="name,discrete,valence",
        row="s1,happy,1.5",
        files={"t.csv": "name,chinese,english\ns1,我,I won\n"},
    ),
    "mer2023-transcripts": Case(
        "mer2023 label.csv t.csv --out OUT",
        "t.csv",
        header="name,chinese,english",
        row="s1,我,I won",
        files={"label.csv": "name,discrete,valence\ns1,happy,1.5\n"},
    ),
    "merr": Case(
        "merr m.json --out OUT --test-list test.txt", "m.json", doc=MERR, files={"test.txt": "s9\n"}
    ),
    "merr-test-list": Case("merr m.json --out OUT --test-list test.txt", "test.txt", files=CLIPS),
    "merr-transcript": Case(
        "merr m.json --out OUT --transcript t.csv",
        "t.csv",
        header="name,sentence",
        row="sample_1,hi",
        files=CLIPS,
    ),
    "stages-config": Case(
        "stages --config s.yaml --out OUT", "s.yaml", doc=STAGES, files={"src.json": json.dumps(TASK_FILE)}
    ),
    "stages-source": Case(
        "stages --config s.yaml --out OUT", "src.json", doc=TASK_FILE, files={"s.yaml": json.dumps(STAGES)}
    ),
}
JSON_CASES = [name for name, case in CASES.items() if case.doc is not None]
CSV_CASES = [name for name, case in CASES.items() if case.header]

SPECIAL_TEXT = [
    "²",
    "١",
    "nan",
    "-inf",
    "Infinity",
    "1e400",
    "NaN",
    "",
    " ",
    '"',
    '"x',
    "\n",
    "a\r\nb",
    "\x00",
]
SPECIAL_TEXT += ["\ud800", "x\udfffy", "x" * 140_000, "9" * 5000, "../x", "/etc/x", "joy", "0", "-1", "1.5"]
TEXT = st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(SPECIAL_TEXT)


def _deep(depth: int) -> object:
    value: object = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


TROUBLE = [float("nan"), float("inf"), -float("inf"), "\ud800", "²", "", 10**30, -1, 0, 1.5, True, None]
SCALARS = st.sampled_from(TROUBLE) | st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
) | st.builds(_deep, st.integers(30, 60))
# Half the values are the known troublemakers, so 60 tries put each in several places.
VALUES = st.tuples(st.booleans(), st.sampled_from(TROUBLE), JSON_VALUES).map(lambda t: t[1] if t[0] else t[2])
SPECIAL_BYTES = [b"", b"\xef\xbb\xbf", b"\x00" * 10, b"\xff\xfe\x92\x85", b"[" * 100_000, b'{"a":' * 50_000]
SPECIAL_BYTES += [b"a" * 140_000 + b"\n", b'"' + b"a" * 140_000, b"1" * 5000, b"[1e400, NaN]", b'"\\ud800"']
BYTES = st.binary(max_size=300) | st.sampled_from(SPECIAL_BYTES)


def _places(doc: object, at: tuple = ()) -> list[tuple]:
    """Every place in ``doc`` a value can be put: the document itself, each item, each member."""
    found = [at]
    children = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, child in children:
        found += _places(child, (*at, key))
    return found


def _get(doc: object, at: tuple) -> object:
    for key in at:
        doc = doc[key]
    return doc


def _put(doc: object, at: tuple, value: object) -> object:
    if not at:
        return value
    doc = copy.deepcopy(doc)
    _get(doc, at[:-1])[at[-1]] = value
    return doc


def _run(case: Case, tmp_path, capsys, content: bytes) -> None:
    """Build ``case`` with ``content`` as its target; assert a valid file (0) or one error line (2)."""
    for name, text in case.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / case.target).write_bytes(content)
    out = tmp_path / ("out" if case.argv.startswith("stages") else "out.json")
    names = (*case.files, case.target)
    argv = [str(out) if a == "OUT" else str(tmp_path / a) if a in names else a for a in case.argv.split()]
    code = main(argv)
    captured = capsys.readouterr()
    if code == 2:
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), captured.err[-2000:]
        return
    assert code == 0, captured
    files = [out / "first_stage.json", out / "second_stage.json"] if out.is_dir() else [out]
    for path in files:
        records = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse)
        assert isinstance(records, list)
        for record in records:
            assert isinstance(record["query"], str) and isinstance(record["response"], str), record
    if out.is_dir():
        json.loads((out / "stages_manifest.json").read_text(encoding="utf-8"), parse_constant=_refuse)


def _refuse(constant: str):
    raise AssertionError(f"{constant} written: not JSON")


@pytest.mark.parametrize("source", list(CASES))
@FUZZ
@given(junk=BYTES, splice=st.none() | st.floats(0, 1))
def test_arbitrary_bytes_as_an_input(source, junk, splice, tmp_path, capsys):
    case = CASES[source]
    good = case.good()
    at = int(splice * len(good)) if splice is not None else 0
    _run(case, tmp_path, capsys, junk if splice is None else good[:at] + junk + good[at:])


@pytest.mark.parametrize("source", JSON_CASES)
@settings(FUZZ, max_examples=2 * EXAMPLES)  # the documents have many places: twice the tries
@given(changes=st.lists(st.tuples(st.booleans(), st.integers(0, 10_000), VALUES), min_size=1, max_size=3))
def test_arbitrary_json_values_in_a_well_formed_input(source, changes, tmp_path, capsys):
    case, doc = CASES[source], CASES[source].doc
    for leaf, place, value in changes:
        places = _places(doc)
        # Half the time a leaf (a string or number the builder reads), else any place, the whole included.
        places = [p for p in places if not isinstance(_get(doc, p), list | dict)] if leaf else places
        doc = _put(doc, places[place % len(places)], value) if places else doc
    _run(case, tmp_path, capsys, case.text(doc))


@pytest.mark.parametrize("source", CSV_CASES)
@FUZZ
@given(
    changes=st.lists(st.tuples(st.integers(0, 20), TEXT), max_size=4),
    size=st.integers(-2, 2),
    raw=st.booleans(),
)
def test_arbitrary_cells_in_a_well_formed_table(source, changes, size, raw, tmp_path, capsys):
    case = CASES[source]
    cells = case.row.split(",") + [""] * max(size, 0)
    cells = cells[: len(cells) + min(size, 0)] if size < 0 else cells
    for index, text in changes:
        if cells:
            cells[index % len(cells)] = text
    _run(case, tmp_path, capsys, case.text(rows=[(cells, raw)]))

"""Arbitrary input through every entry point that reads records or predictions: a result (records
loaded, bad ones counted) or one ``error: ...`` line, never a traceback.

Hypothesis draws the files (deterministically, ``derandomize``): arbitrary bytes, runaway nesting, and
JSON lists / JSONL whose items are arbitrary JSON values or valid demo records with one field replaced
by an arbitrary value (NaN, Infinity, lone surrogates, ``²``, ``../`` paths, nested containers).
Inputs per entry point (``max_examples``): inspect 60, cache 40, evaluate predictions= 60 and
baseline= 40 (test files), evaluate with the tiny model 8, predict inputs= 8, train 8 (the builders:
tests/sources).
"""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluate import evaluate
from m2se.cli import run
from m2se.data import cache, inspect
from predict import predict
from train import train

CONF = Path(__file__).resolve().parents[1] / "conf"
SPECIAL = [
    "\ud800",
    "\udfff",
    "²",
    "<IMG_CONTEXT>",
    "<|end|>",
    "../../etc/passwd",
    "/etc/passwd",
    "\x00",
    "nan",
    "\u2028",
    "Joy.",
    "",
]
TEXT = st.lists(st.one_of(st.characters(), st.sampled_from(SPECIAL)), max_size=12).map("".join)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
JSON = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=6
)
KEYS = ["query", "response", "label", "images", "videos", "audio", "features", "score", "conversation_ID",
        "dataset", "labels", "native"]  # fmt: skip
RAW = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"[]", b"\n\n", b"[" * 100_000, b'{"a":' * 5_000, b"\xff\xfe{", b"[1, NaN]"]),
)
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@st.composite
def mutated(draw, base: list[dict]) -> dict:
    record = dict(draw(st.sampled_from(base)))
    op = draw(st.sampled_from(["set", "delete", "append"]))
    key = draw(st.sampled_from(KEYS) | TEXT)
    if op == "set":
        record[key] = draw(JSON)
    elif op == "delete":
        record.pop(key, None)
    elif isinstance(record.get(key), str):
        record[key] += draw(TEXT)
    return record


def files(base: list[dict]):
    """File contents (bytes): raw bytes, or a JSON list / JSONL of valid, mutated and arbitrary items."""
    items = st.lists(st.one_of(st.sampled_from(base), mutated(base), JSON), min_size=1, max_size=4)
    as_list = items.map(lambda xs: json.dumps(xs).encode())
    as_lines = items.map(lambda xs: "\n".join(json.dumps(x) for x in xs).encode())
    return st.one_of(RAW, as_list, as_lines)


def one_line_or_nothing(call) -> None:
    """Run an entry point's job; an error must be one ``error: ...`` line (SystemExit from m2se.cli.run)."""
    try:
        call()
    except SystemExit as exit:
        message = str(exit.code)
        assert message.startswith("error: ") and "\n" not in message, message


def records(path: Path, n: int = 3) -> list[dict]:
    return json.loads(path.read_text())[:n]


@pytest.fixture(scope="module")
def demo(demo_dir):
    base = records(demo_dir / "first_stage.json") + records(demo_dir / "test/erc.json", 2)
    return demo_dir, base


def cli_result(capsys, status: int) -> None:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if status:
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert status in (1, 2) and len(lines) <= 1


def test_inspect(demo, tmp_path, capsys):
    demo_dir, base = demo

    @settings(max_examples=60, **SETTINGS)
    @given(content=files(base), decode=st.booleans())
    def check(content, decode):
        path = tmp_path / "fuzz.json"
        path.write_bytes(content)
        args = [str(path), "--media-root", str(demo_dir), "--json"] + (["--decode"] if decode else [])
        cli_result(capsys, inspect.main(args))

    check()


def test_cache(demo, tmp_path, capsys):
    demo_dir, base = demo

    @settings(max_examples=40, **SETTINGS)
    @given(content=files(base))
    def check(content):
        path = tmp_path / "fuzz.jsonl"
        path.write_bytes(content)
        args = [str(path), "--media-root", str(demo_dir), "--out", str(tmp_path / "cache"), "--workers", "1"]
        cli_result(capsys, cache.main([*args, "--tile-size", "56", "--num-frames", "2"]))

    check()


def evaluate_config(out: Path, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("evaluate", overrides=[f"output_dir={out}", "data.num_workers=0", *overrides])


def test_evaluate_predictions(demo, tmp_path):
    _, base = demo
    rows = [{**r, "label": r["response"]} for r in base]

    @settings(max_examples=60, **SETTINGS)
    @given(content=files(rows), skip=st.booleans(), dedupe=st.booleans())
    def check(content, skip, dedupe):
        path = tmp_path / "predictions.jsonl"
        path.write_bytes(content)
        cfg = evaluate_config(
            tmp_path / "out",
            f"predictions={path}",
            f"data.on_bad_record={'skip' if skip else 'raise'}",
            f"duplicates={'dedupe' if dedupe else 'refuse'}",
        )
        one_line_or_nothing(lambda: run(evaluate, cfg))

    check()


def test_evaluate_baseline_on_test_files(demo, tmp_path):
    demo_dir, base = demo

    @settings(max_examples=40, **SETTINGS)
    @given(content=files(base), skip=st.booleans())
    def check(content, skip):
        path = tmp_path / "test.json"
        path.write_bytes(content)
        cfg = evaluate_config(
            tmp_path / "out",
            "task=erc",
            "baseline=majority",
            f"++data.test_sources.erc={{path: '{path}', media_root: '{demo_dir}'}}",
            f"data.on_bad_record={'skip' if skip else 'raise'}",
        )
        one_line_or_nothing(lambda: run(evaluate, cfg))

    check()


def test_evaluate_with_the_tiny_model(demo, tiny_model_dir, tmp_path):
    demo_dir, base = demo

    @settings(max_examples=8, **SETTINGS)
    @given(content=files(base), skip=st.booleans())
    def check(content, skip):
        path = tmp_path / "test.json"
        path.write_bytes(content)
        cfg = evaluate_config(
            tmp_path / "out",
            "experiment=demo",
            "task=msa",
            f"model.path={tiny_model_dir}",
            f"data.data_dir={demo_dir}",
            f"data.test_sources.msa.path={path}",
            f"data.on_bad_record={'skip' if skip else 'raise'}",
        )
        one_line_or_nothing(lambda: run(evaluate, cfg))

    check()


def test_predict(demo, tiny_model_dir, tmp_path):
    """Any record file as predict.py's inputs: one line per record (answer or error), or one error line."""
    demo_dir, base = demo

    @settings(max_examples=8, **SETTINGS)
    @given(content=files(base), jsonl=st.booleans())
    def check(content, jsonl):
        path = demo_dir / ("questions.jsonl" if jsonl else "questions.json")  # beside the records' media
        path.write_bytes(content)
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose(
                "predict",
                overrides=["experiment=demo", f"model.path={tiny_model_dir}", f"inputs={path}",
                           f"output_dir={tmp_path / 'out'}", "data.num_workers=0", "scores=false"],
            )  # fmt: skip
        one_line_or_nothing(lambda: run(predict, cfg))
        out = tmp_path / "out/predictions.jsonl"
        for line in out.read_text().split("\n")[:-1] if out.is_file() else ():  # JSON may hold U+2028
            row = json.loads(line)
            assert row["input"].startswith(path.name) and (
                row.get("error") or isinstance(row["response"], str)
            )
        out.unlink(missing_ok=True)

    check()


def test_train(demo, tiny_model_dir, tmp_path):
    demo_dir, base = demo

    @settings(max_examples=8, **SETTINGS)
    @given(content=files(base[:3]), skip=st.booleans())
    def check(content, skip):
        path = tmp_path / "first_stage.json"
        path.write_bytes(content)
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    "experiment=demo",
                    "stage=first",
                    f"model.path={tiny_model_dir}",
                    f"data.data_dir={demo_dir}",
                    f"data.sources=[{{path: '{path}', media_root: '{demo_dir}'}}]",
                    f"data.on_bad_record={'skip' if skip else 'raise'}",
                    f"output_dir={tmp_path / 'run'}",
                    "data.num_workers=0",
                    "data.val_fraction=0",
                    "trainer.max_steps=1",
                    "logger=none",
                ],
            )
        one_line_or_nothing(lambda: run(train, cfg))

    check()

"""python -m m2se.export from the command line (one-line errors, exit codes, what it prints), and the
export folder as ``ckpt=`` of evaluate.py: the same metrics as the adapter it came from."""

import json
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from evaluate import evaluate
from m2se.cli import use_export
from m2se.export import main

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["out=x"], 2, r"ckpt= is required"),
        (["ckpt=a", "out=b", "dtype=int8"], 2, r"dtype=int8 format=native: dtype is one of bf16, fp16, fp32"),
        (["ckpt=a", "out=b", "format=gguf"], 2, r"format one of native, original"),
        (["ckpt=a", "out=b", "colour=red"], 2, r"unknown argument 'colour=red' \(known keys: ckpt, out, dtype"),
        (["ckpt=a", "out=b", "overwrite=maybe"], 2, r"overwrite"),
        (["ckpt=a", "out=b", "format=native", "format=original"], 2, r"format= is given twice"),
        (["ckpt=a", "out=b", "max_shard_size=big"], 1, r"max_shard_size 'big': expected a size such as 4GB"),
        (["ckpt=/nonexistent/adapter", "out=b"], 1, r"ckpt /nonexistent/adapter: no such adapter folder or checkpoint"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line(args, code, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "ckpt=a" in args:
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "adapter_config.json").write_text("{}")
    assert main(args) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and re.search(message, err), err


def test_a_folder_with_files_is_replaced_only_with_overwrite(trained_runs, tmp_path, capsys):
    adapter, out = trained_runs / "runs/second/adapter", tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main([f"ckpt={adapter}", f"out={out}"]) == 1
    assert "exists and is not empty (overwrite=true replaces it)" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep me"
    assert main([f"ckpt={adapter}", f"out={out}", "overwrite=true"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(rf"{re.escape(str(out))}: native bfloat16, \d+\.\d MiB, \d+\.\d s", last), last
    assert not (out / "mine.txt").exists() and (out / "m2se_export.json").is_file()
    assert not list(tmp_path.glob(".out*"))  # nothing staged is left beside it
    assert main([f"ckpt={out}", f"out={tmp_path / 'again'}"]) == 1
    assert "is an export already" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["the adapter", "its run", "inside the adapter", "the base"])
def test_out_never_replaces_what_the_export_reads_even_with_overwrite(trained_runs, tmp_path, capsys, where):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(trained_runs / "runs", runs)
    adapter = runs / "second/adapter"
    base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    out = {"the adapter": adapter, "its run": runs / "second", "inside the adapter": adapter / "export",
           "the base": Path(base)}[where]  # fmt: skip
    before = sorted(p.name for p in out.parent.iterdir())
    assert main([f"ckpt={adapter}", f"out={out}", "overwrite=true"]) == 1
    assert "choose another folder" in capsys.readouterr().err
    assert (
        sorted(p.name for p in out.parent.iterdir()) == before and (adapter / "adapter_config.json").is_file()
    )


def config(out: Path, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("evaluate", overrides=[f"output_dir={out}", *overrides])


@pytest.mark.parametrize("form", ["native", "original"])
def test_evaluate_takes_the_export_as_the_model_with_the_same_metrics(
    trained_runs, tiny_model_dir, demo_dir, tmp_path, form
):
    adapter, exported = trained_runs / "runs/second/adapter", tmp_path / "export"
    assert main([f"ckpt={adapter}", f"out={exported}", "dtype=fp32", f"format={form}"]) == 0
    common = [
        "experiment=demo",
        "task=erc",
        f"data.data_dir={demo_dir}",
        "data.num_workers=0",
        "data.batch_size=20",
    ]
    common += [f"model.cache_dir={tmp_path / 'cache'}"]  # format=original is converted there once
    results = {}
    for name, ckpt in (("adapter", adapter), ("export", exported)):
        cfg = config(tmp_path / name, *common, f"model.path={tiny_model_dir}", f"ckpt={ckpt}")
        results[name] = evaluate(cfg)["erc"]
    assert results["export"].metrics == results["adapter"].metrics
    answers = [
        [json.loads(line)["response"] for line in (tmp_path / n / "predictions/erc.jsonl").open()]
        for n in results
    ]
    assert answers[0] == answers[1] and len(answers[0]) == 40
    if form == "native":  # the merged LoRA changes the answers: equal answers are the export's doing
        evaluate(config(tmp_path / "base", *common, f"model.path={tiny_model_dir}"))
        base = [json.loads(line)["response"] for line in (tmp_path / "base/predictions/erc.jsonl").open()]
        assert base != answers[0]


def test_predict_takes_the_export_as_the_model(trained_runs, tiny_model_dir, demo_dir, tmp_path):
    from predict import predict

    adapter, exported = trained_runs / "runs/second/adapter", tmp_path / "export"
    assert main([f"ckpt={adapter}", f"out={exported}", "dtype=fp32"]) == 0
    lines = {}
    for name, ckpt in (("adapter", adapter), ("export", exported)):
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose("predict", overrides=[
                f"output_dir={tmp_path / name}", "experiment=demo", "task=erc", f"model.path={tiny_model_dir}",
                f"inputs={demo_dir}/media/clips/*_test0.mp4", f"data.data_dir={demo_dir}", f"ckpt={ckpt}",
                f"out={tmp_path / name}.jsonl",
            ])  # fmt: skip
        predict(cfg)
        lines[name] = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").open()]
    assert len(lines["export"]) == len(list((demo_dir / "media/clips").glob("*_test0.mp4"))) > 3
    for a, b in zip(lines["adapter"], lines["export"], strict=True):
        assert a["response"] == b["response"] and a["scores"] == pytest.approx(b["scores"], abs=1e-5)


def test_the_settings_an_export_records_replace_the_configs_except_the_command_lines(trained_runs, tmp_path):
    exported = tmp_path / "export"
    assert main([f"ckpt={trained_runs / 'runs/second/adapter'}", f"out={exported}"]) == 0
    record = json.loads((exported / "m2se_export.json").read_text())
    record["processor"] |= {"num_frames": 2, "system_prompt": "Be brief."}
    (exported / "m2se_export.json").write_text(json.dumps(record))
    cfg = config(tmp_path / "out", f"ckpt={exported}", "data.num_frames=6")
    replaced = use_export(cfg, given=["data.num_frames"])
    assert cfg.model.path == str(exported) and cfg.model.backbone.path == str(exported)
    assert cfg.data.processor.system_prompt == "Be brief." and cfg.data.max_tiles == 4
    assert cfg.data.num_frames == 6 and "data.num_frames" not in replaced  # given on the command line
    plain = config(tmp_path / "out", f"ckpt={trained_runs / 'runs/second/adapter'}")
    assert use_export(plain) == [] and plain.model.path == "OpenGVLab/InternVL2-4B"

"""m2se.cli: config paths of the wrong type are one line naming the key, not a TypeError."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from m2se.cli import build_data, check_paths, prepare_demo

CONF = Path(__file__).resolve().parents[1] / "conf"


def config(name: str, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(name, overrides=["output_dir=/tmp/out", *overrides])


@pytest.mark.parametrize(
    ("name", "override", "message"),
    [
        ("evaluate", "predictions=[a,b]", "predictions must be a path, got a list"),
        ("evaluate", "predictions={a:1}", "predictions must be a path, got a mapping"),
        ("evaluate", "data.test_sources.erc.path=null", "data.test_sources.erc.path must be a path, got null"),
        ("evaluate", "output_dir=null", "output_dir must be a path, got null"),
        ("train", "ckpt=[x]", "ckpt must be a path, got a list"),
        ("train", "data.sources=[{path: null}]", r"data.sources\[0\].path must be a path, got null"),
        ("train", "data.sources=[{path: a.json, media_root: true}]", r"data.sources\[0\].media_root must be a path, got True"),
    ],
)  # fmt: skip
def test_paths_of_the_wrong_type_name_the_key(name, override, message):
    with pytest.raises(ValueError, match=message):
        check_paths(config(name, override))


def test_a_number_is_the_file_name_it_spells_and_null_means_none():
    cfg = config("evaluate", "predictions=123", "ckpt=null")
    check_paths(cfg)
    assert cfg.predictions == "123" and cfg.ckpt is None


@pytest.mark.parametrize("seed", ["inf", "nan", "abc", "true"])
def test_a_seed_that_is_no_integer_is_one_line(seed):
    from m2se.cli import check_seed

    with pytest.raises(ValueError, match="seed must be an integer"):
        check_seed(config("evaluate", f"seed={seed}"))
    check_seed(config("evaluate", "seed=7"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.backbone._target_=builtins.dict", "model.backbone._target_ built a dict, not a backbone"),
        (
            "model.processor._target_=builtins.dict",
            "model.processor._target_ built a dict, not an M2SEProcessor",
        ),
    ],
)
def test_a_model_config_that_builds_the_wrong_thing_is_one_line(tiny_model_dir, demo_dir, override, message):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=demo",
                f"model.path={tiny_model_dir}",
                f"data.data_dir={demo_dir}",
                override,
            ],
        )
    with pytest.raises(ValueError, match=message):
        build_data(cfg)


@pytest.mark.parametrize(
    ("model", "override"),
    [("tiny_qwen", "+model.processor.frame_sise=112"), ("tiny", "+model.processor.frame_size=112")],
)
def test_a_processor_option_the_family_does_not_take_is_one_line(
    tiny_model_dir, tiny_qwen_dir, demo_dir, model, override
):
    folder = tiny_qwen_dir if model == "tiny_qwen" else tiny_model_dir
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["experiment=demo", f"model={model}", f"model.path={folder}", f"data.data_dir={demo_dir}", override],
        )  # fmt: skip
    with pytest.raises(
        ValueError, match=r"model\.processor / data\.processor: .*unexpected keyword argument 'frame_si"
    ):
        build_data(cfg)


def test_the_demo_never_builds_its_model_into_a_users_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"precious")
    cfg = config("train", "experiment=demo", f"model.path={folder}", f"data.data_dir={tmp_path / 'data'}")
    with pytest.raises(FileNotFoundError, match="holds no model .* not an empty folder"):
        prepare_demo(cfg)
    assert sorted(p.name for p in folder.iterdir()) == ["clip.mp4"]


def test_importing_the_package_silences_bitsandbytes_missing_cpu_kernel_line():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import m2se, bitsandbytes, peft"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "gemm_4bit_forward" not in done.stderr

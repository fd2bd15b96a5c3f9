"""Session fixtures: the tiny random InternVL and Qwen2.5-VL and the demo dataset are built once, in code."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The variable naming a folder with EmoVerse's two released test files (docs/DATA.md §1).
EMOVERSE_TESTS = "M2SE_EMOVERSE_TESTS"
EMOVERSE_TEST_FILES = ("meld_test_data.json", "ecf2_caption_test.json")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from m2se.model.tiny import build_tiny_internvl

    return build_tiny_internvl(tmp_path_factory.mktemp("tiny") / "tiny-internvl", seed=0)


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory) -> Path:
    from m2se.model.tiny_qwen import build_tiny_qwen

    return build_tiny_qwen(tmp_path_factory.mktemp("tiny") / "tiny-qwen", seed=0)


@pytest.fixture(scope="session")
def tiny_qwen2_vl_dir(tmp_path_factory) -> Path:
    from m2se.model.tiny_qwen import build_tiny_qwen

    return build_tiny_qwen(tmp_path_factory.mktemp("tiny") / "tiny-qwen2-vl", seed=0, variant="qwen2_vl")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    from m2se.data.demo import write_demo_dataset

    return write_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", seed=0)


@pytest.fixture(scope="session")
def emoverse_dir() -> Path:
    """The folder ``$M2SE_EMOVERSE_TESTS`` with EmoVerse's two released test files; tests using it skip
    when the variable is unset or the folder lacks them."""
    folder = os.environ.get(EMOVERSE_TESTS)
    if not folder:
        pytest.skip(f"{EMOVERSE_TESTS} is not set (the folder of EmoVerse's test files: see docs/DATA.md)")
    missing = [name for name in EMOVERSE_TEST_FILES if not (Path(folder) / name).is_file()]
    if missing:
        pytest.skip(f"{EMOVERSE_TESTS}={folder} has no {', '.join(missing)} (see docs/DATA.md)")
    return Path(folder).resolve()  # tests may change the working directory


@pytest.fixture(scope="session")
def trained_runs(tiny_model_dir, tmp_path_factory) -> Path:
    """Two stages' run folders on the tiny model, as train.py leaves them (tests/model/trained_runs.py):
    ``runs/second/adapter`` holds both stages' LoRA; ``eval`` evaluated it."""
    from tests.model.trained_runs import write_trained_runs

    return write_trained_runs(tmp_path_factory.mktemp("trained"), tiny_model_dir)


_COLLECTED = pytest.StashKey[frozenset]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # Before -m or -k deselects any test: the files this session collected (collected_files).
    config.stash[_COLLECTED] = frozenset(Path(item.path) for item in items)


@pytest.fixture
def collected_files(request) -> frozenset[Path]:
    """Every test file this session collected, before markers or -k deselected tests."""
    return request.config.stash[_COLLECTED]

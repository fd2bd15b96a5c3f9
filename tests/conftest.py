"""Session fixtures: the tiny random InternVL and the demo dataset are built once, in code."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from m2se.model.tiny import build_tiny_internvl

    return build_tiny_internvl(tmp_path_factory.mktemp("tiny") / "tiny-internvl", seed=0)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    from m2se.data.demo import write_demo_dataset

    return write_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", seed=0)


@pytest.fixture(scope="session")
def emoverse_dir() -> Path:
    """The two released EmoVerse test files; tests using them skip when ../shared is absent."""
    path = SHARED_REFERENCE / "emoverse"
    if not (path / "meld_test_data.json").exists():
        pytest.skip("../shared/reference/emoverse is not beside this checkout")
    return path

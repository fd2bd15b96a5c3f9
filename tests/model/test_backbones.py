"""InternVL2.5/3 backbones: the InternVL3-like tiny trains and generates through train.py, an -hf style
ChatML template feeds the processor the same ids, and every conf/model InternVL entry composes, names
its hub checkpoint and has its README line."""

import math
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from transformers import AutoTokenizer, InternVLForConditionalGeneration

from m2se.data import internvl
from m2se.data.dataset import prompts_of
from m2se.data.processor import M2SEProcessor
from m2se.model.internvl import resolve_model_path
from m2se.model.tiny import build_tiny_internvl
from tests.test_train import column, metrics, run

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
# The plain ChatML template of the native -hf releases (transformers' InternVL conversion writes it):
# no default system message, a newline after each <|im_end|>.
HF_CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tiny3_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny3") / "tiny-internvl3"
    return build_tiny_internvl(out, seed=0, variant="internvl3")


def test_internvl3_tiny_speaks_internvl2_5_with_a_qwen2_5_style_llm(tiny3_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny3_dir)
    model = InternVLForConditionalGeneration.from_pretrained(tiny3_dir)
    messages = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
    ]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    )
    assert tokenizer.eos_token == "<|im_end|>" == tokenizer.decode(model.generation_config.eos_token_id)
    text = model.config.text_config
    assert (text.model_type, text.rope_parameters["rope_type"], text.rope_parameters["factor"]) == (
        "qwen2",
        "dynamic",
        2.0,
    )
    assert not model.config.tie_word_embeddings and model.config.vision_config.attention_bias
    assert resolve_model_path(tiny3_dir, tmp_path / "cache") == tiny3_dir  # native: used as is
    with pytest.raises(
        ValueError, match="unknown tiny variant 'internvl4' \\(known: internvl2, internvl3\\)"
    ):
        build_tiny_internvl(tmp_path / "x", variant="internvl4")


def test_internvl3_tiny_trains_and_generates_through_train_py(tiny3_dir, demo_dir, tmp_path):
    trainer, module, dm = run(tmp_path, tiny3_dir, demo_dir, "trainer.limit_train_batches=3")
    assert trainer.global_step == 3 and (tmp_path / "adapter/adapter_config.json").is_file()
    assert dm.processor.tokenizer.eos_token == "<|im_end|>"
    rows = metrics(tmp_path)
    assert all(math.isfinite(loss) for loss in column(rows, "train/loss")) and column(rows, "train/loss")
    assert column(rows, "val/msa/accuracy")  # validation generated answers and scored them
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()[list(dm.test_records).index("msa")]))
    answers = module.generate_answers(prompts_of(batch, dm.processor.tokenizer.pad_token_id), "msa")
    assert len(answers) == len(batch["records"]) and all(isinstance(a, str) for a in answers)


def test_an_hf_style_chatml_template_gives_the_processor_the_same_ids(tiny3_dir):
    """With the project's system prompt the -hf template writes what the converter's internvl2_5 one does."""
    converted_style = internvl.from_pretrained(tiny3_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny3_dir)
    tokenizer.chat_template = HF_CHATML
    hf_style = M2SEProcessor(tokenizer, converted_style.vision)
    frames = torch.randint(0, 256, (2, 56, 56, 3), dtype=torch.uint8).numpy()
    a, b = (p("The person says: 'hi'", "Joy.", videos=[frames]) for p in (converted_style, hf_style))
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)


def test_answers_stop_at_the_turn_end_training_taught_even_when_eos_differs(tiny3_dir):
    """An InternLM-based -hf release keeps ``</s>`` as eos while its turns end with ``<|im_end|>``:
    generation must stop at both (it stopped at eos alone and ran on past the answer)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny3_dir)
    tokenizer.chat_template = HF_CHATML
    tokenizer.add_special_tokens({"eos_token": "</s>"})
    processor = M2SEProcessor(tokenizer, internvl.from_pretrained(tiny3_dir).vision)
    stops = tokenizer.convert_ids_to_tokens(processor.stop_token_ids)
    assert stops == ["<|im_end|>", "</s>"]
    same = internvl.from_pretrained(tiny3_dir)  # eos is the turn end: one stop token
    assert same.tokenizer.convert_ids_to_tokens(same.stop_token_ids) == ["<|im_end|>"]


ENTRY = re.compile(r"internvl(2|2_5|3)_(\d+b)(_hf)?")
ENTRIES = sorted(p.stem for p in (CONF / "model").glob("internvl*.yaml"))


@pytest.mark.parametrize("stem", ENTRIES)
def test_every_internvl_entry_composes_names_its_checkpoint_and_has_a_readme_line(stem):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={stem}"])
    match = ENTRY.fullmatch(stem)
    assert match, f"conf/model/{stem}.yaml: name is not internvl<version>_<size>[_hf]"
    version, size, hf = match.groups()
    assert cfg.model.path == f"OpenGVLab/InternVL{version}-{size.upper()}" + ("-hf" if hf else "")
    assert cfg.model.backbone.path == cfg.model.processor.path == cfg.model.path
    assert (CONF / "model" / f"{stem}.yaml").read_text().startswith(f"# python train.py model={stem}\n")
    assert re.search(rf"^\| `{stem}` \|", (ROOT / "README.md").read_text(), re.MULTILINE), stem


def test_model_tiny_internvl3_builds_its_variant_on_first_use(tmp_path):
    from hydra.utils import instantiate

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train", overrides=["experiment=demo", "model=tiny_internvl3", f"model.path={tmp_path / 't3'}"]
        )
    instantiate(cfg.model.build)  # what prepare_demo runs when model.path holds no model yet
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "t3")
    assert "<|im_start|>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    )

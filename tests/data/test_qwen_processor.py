"""Qwen-VL's processor side: pictures as Qwen's patch grids, equal to transformers' own processors."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from m2se.data import internvl, qwen_vl

QUERY = "What is the emotion?"


def frames(n: int, side: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def hf_video_patchify():
    """transformers' Qwen2-VL video patchify, read from its source: the module imports torchvision,
    which this project never installs, but the function itself is plain torch."""
    source = Path(transformers.__file__).parent / "models" / "qwen2_vl" / "video_processing_qwen2_vl.py"
    tree = ast.parse(source.read_text())
    function = next(
        node
        for cls in tree.body
        if isinstance(cls, ast.ClassDef)
        for node in cls.body
        if isinstance(node, ast.FunctionDef) and node.name == "patchify"
    )
    namespace = {"torch": torch}
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(source), "exec"), namespace)
    return namespace["patchify"]


@pytest.fixture(scope="module")
def processor(tiny_qwen_dir):
    return qwen_vl.from_pretrained(tiny_qwen_dir, frame_size=56)


@pytest.mark.parametrize("side", [56, 112])
def test_an_image_is_transformers_pil_processor_patches(tiny_qwen_dir, side):
    processor = qwen_vl.from_pretrained(tiny_qwen_dir, frame_size=side)
    image = frames(1, side)
    inputs = processor.vision.inputs([image], [], normalise=True)
    reference = Qwen2VLImageProcessorPil(min_pixels=side * side, max_pixels=side * side)
    expected = reference(list(image), return_tensors="pt", input_data_format="channels_last")
    torch.testing.assert_close(inputs["pixel_values"], expected.pixel_values, atol=1e-5, rtol=0)
    assert torch.equal(inputs["image_grid_thw"], expected.image_grid_thw)


@pytest.mark.parametrize("count", [8, 3])  # an odd clip repeats its last frame, as transformers does
def test_a_clip_is_transformers_video_patches(processor, count):
    clip = frames(count)
    inputs = processor.vision.inputs([], [clip], normalise=True)
    # normalise works per channel on anything (N, 3, ...): here on the frames, before patching
    normalised = processor.vision.normalise(processor.vision.frames(clip))
    expected, t, h, w = hf_video_patchify()(None, normalised.view(1, count, 3, 56, 56), 14, 2, 2)
    torch.testing.assert_close(inputs["pixel_values_videos"], expected[0], atol=1e-6, rtol=0)
    assert inputs["video_grid_thw"].tolist() == [[t, h, w]] == [[(count + 1) // 2, 4, 4]]
    assert inputs["second_per_grid_ts"].tolist() == [1.0]  # 2 frames at the default 2 frames per second


def test_the_prompt_holds_one_picture_per_clip_and_image(processor):
    sample = processor(QUERY, "Joy", images=[frames(1)], videos=[frames(8)])
    text = processor.tokenizer.decode(sample.input_ids)
    image = "<|vision_start|>" + "<|image_pad|>" * 4 + "<|vision_end|>\n"
    clip = "<|vision_start|>" + "<|video_pad|>" * 16 + "<|vision_end|>\n"
    assert f"<|im_start|>user\n{image}{clip}{QUERY}<|im_end|>\n<|im_start|>assistant\nJoy<|im_end|>" in text
    assert sample.num_visual_tokens == 20
    assert processor.count_tokens(QUERY, "Joy", image_tiles=[1], video_frames=[8]) == len(sample.input_ids)
    two = processor(QUERY, videos=[frames(2), frames(4)])
    assert "Video-1: <|vision_start|>" in processor.tokenizer.decode(two.input_ids)
    assert two.vision_inputs["video_grid_thw"].tolist() == [[1, 4, 4], [2, 4, 4]]


def test_uint8_patches_normalise_to_the_float_ones_and_token_types_follow_the_ids(tiny_qwen_dir, processor):
    as_bytes = qwen_vl.from_pretrained(tiny_qwen_dir, frame_size=56, pixels="uint8")
    media = dict(images=[frames(1, seed=1)], videos=[frames(8, seed=2)])
    floats = processor.collate([processor(QUERY, "Joy", **media), processor("Text only.", "Joy")])
    raw = as_bytes.collate([as_bytes(QUERY, "Joy", **media), as_bytes("Text only.", "Joy")])
    assert raw["pixel_values"].dtype == raw["pixel_values_videos"].dtype == torch.uint8
    model_inputs = as_bytes.model_inputs(raw)
    for name in ("pixel_values", "pixel_values_videos"):
        torch.testing.assert_close(model_inputs[name], floats[name], atol=1e-5, rtol=0)
    types = model_inputs["mm_token_type_ids"]
    assert torch.equal(types, floats["mm_token_type_ids"])
    assert (types[0] == 1).sum() == 4 and (types[0] == 2).sum() == 16 and not types[1].any()
    assert as_bytes.model_inputs(as_bytes.collate([as_bytes("Text only.", "Joy")])) == {}


def test_bad_settings_and_text_that_would_misalign_the_pictures_are_refused(
    tiny_qwen_dir, tiny_model_dir, processor
):
    for size in (50, 0, 28.0, "abc", None, True):
        with pytest.raises(
            ValueError, match=r"model\.processor\.frame_size must be a positive multiple of 28"
        ):
            qwen_vl.from_pretrained(tiny_qwen_dir, frame_size=size)
    for rate in (0, -1, float("nan"), float("inf"), "abc", None):
        with pytest.raises(ValueError, match=r"model\.processor\.frames_per_second must be a number > 0"):
            qwen_vl.from_pretrained(tiny_qwen_dir, frames_per_second=rate)
    with pytest.raises(ValueError, match="not a Qwen2-VL or Qwen2.5-VL model directory"):
        qwen_vl.from_pretrained(tiny_model_dir)
    with pytest.raises(ValueError, match="not an InternVL model directory"):
        internvl.from_pretrained(tiny_qwen_dir)
    assert processor.control_token_in("look: <|video_pad|>") == "<|video_pad|>"
    with pytest.raises(ValueError, match="misalign"):
        processor("look: <|image_pad|>", videos=[frames(2)])
    assert processor.image_tiles(12) == 1  # an image is one picture: MediaLoader reads one tile


def test_a_model_folder_without_its_tokenizer_says_so(tiny_qwen_dir, tmp_path):
    import shutil

    folder = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_qwen_dir, folder)
    for file in folder.glob("tokenizer*"):
        file.unlink()
    with pytest.raises(ValueError, match="no tokenizer there"):
        qwen_vl.from_pretrained(folder)

import math

import numpy as np
import pytest
import torch
from transformers import InternVLForConditionalGeneration
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from m2se.data import internvl
from m2se.data.processor import IGNORE_INDEX, OverBudgetError
from m2se.data.tiles import count_tiles, tile_image

SYSTEM = "<|system|>\nYou are an sentiment and emotion analysis expert.<|end|>"
QUERY = "The person says: 'I got the job!' <emotion> Please determine which emotion label in the video represents."
END_OF_PROMPT = "<|end|><|assistant|>\n"


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return internvl.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return InternVLForConditionalGeneration.from_pretrained(tiny_model_dir).eval()


def frames(n: int, size: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def decode(processor, ids) -> str:
    return processor.tokenizer.decode(ids, skip_special_tokens=False)


def image_text(processor, tiles: int) -> str:
    return "<img>" + "<IMG_CONTEXT>" * (processor.vision.tokens_per_tile * tiles) + "</img>\n"


def test_from_pretrained_reads_tile_geometry(processor, tiny_model_dir):
    assert (processor.tile_size, processor.vision.tokens_per_tile) == (56, 4)
    assert internvl.from_pretrained(tiny_model_dir, max_length=64).max_length == 64


def test_video_frames_come_first_then_query(processor):
    sample = processor(QUERY, "Joy.", videos=[frames(3)])
    media = "".join(f"Frame{i}: " + image_text(processor, 1) for i in (1, 2, 3))
    expected = f"{SYSTEM}<|user|>\n{media}{QUERY}{END_OF_PROMPT}Joy.<|end|>"
    assert decode(processor, sample.input_ids) == expected
    assert (
        int((sample.input_ids == processor.vision.image_token_id).sum()) == 3 * 4 == sample.num_visual_tokens
    )
    assert sample.num_text_tokens == len(sample.input_ids) - 12
    assert sample.pixel_values.shape == (3, 3, 56, 56)


def test_images_are_numbered_only_when_several(processor):
    one = decode(processor, processor(QUERY, images=[frames(5)]).input_ids)
    assert one == f"{SYSTEM}<|user|>\n{image_text(processor, 5)}{QUERY}{END_OF_PROMPT}"
    two = processor(QUERY, images=[frames(5), frames(1)])
    media = "Image-1: " + image_text(processor, 5) + "Image-2: " + image_text(processor, 1)
    assert decode(processor, two.input_ids) == f"{SYSTEM}<|user|>\n{media}{QUERY}{END_OF_PROMPT}"
    assert two.pixel_values.shape[0] == 6


@pytest.mark.parametrize("response", ["Joy.", "11_fear,9;11_fear,11", ""])
def test_labels_cover_the_answer_and_its_end_token_only(processor, response):
    sample = processor(QUERY, response, videos=[frames(2)])
    assert decode(processor, sample.labels[sample.labels != IGNORE_INDEX]) == response + "<|end|>"
    trained = (sample.labels != IGNORE_INDEX).nonzero().flatten()
    assert trained.tolist() == list(range(trained[0], len(sample.labels)))  # one block at the end


def test_generation_prompt_is_a_prefix_of_the_training_ids(processor):
    train = processor(QUERY, "Surprise.", videos=[frames(2)])
    prompt = processor(QUERY, None, videos=[frames(2)])
    assert torch.equal(train.input_ids[: len(prompt.input_ids)], prompt.input_ids)
    assert (train.labels[: len(prompt.input_ids)] == IGNORE_INDEX).all()
    assert (prompt.labels == IGNORE_INDEX).all()
    assert decode(processor, prompt.input_ids).endswith(END_OF_PROMPT)


def test_pixel_values_are_resized_and_imagenet_normalised(processor):
    white = np.full((2, 40, 90, 3), 255, np.uint8)  # not tile-sized: squashed to 56×56 like InternVL video
    pixels = processor(QUERY, videos=[white]).pixel_values
    assert pixels.shape == (2, 3, 56, 56) and pixels.dtype == torch.float32
    expected = (1 - torch.tensor(IMAGENET_DEFAULT_MEAN)) / torch.tensor(IMAGENET_DEFAULT_STD)
    torch.testing.assert_close(pixels.mean(dim=(0, 2, 3)), expected.float(), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("height", "width", "max_tiles", "thumbnail", "tiles"),
    [
        (448, 448, 12, True, 1),  # square: one tile, and no thumbnail beside a single tile
        (448, 1344, 12, True, 3 + 1),  # 3:1 → 3×1 grid + thumbnail
        (448, 1344, 12, False, 3),
        (100, 2000, 4, True, 4 + 1),  # would want 20:1; capped at 4×1
        (100, 2000, 1, True, 1),
        (900, 600, 12, True, 6 + 1),  # 2:3 → 2 columns × 3 rows
    ],
)
def test_tile_image_grids(height, width, max_tiles, thumbnail, tiles):
    image = np.zeros((height, width, 3), np.uint8)
    out = tile_image(image, tile_size=448, max_tiles=max_tiles, use_thumbnail=thumbnail)
    assert out.shape == (tiles, 448, 448, 3) and out.dtype == np.uint8
    assert count_tiles(height, width, 448, max_tiles, thumbnail) == tiles


def test_images_are_tiled_at_the_processors_tile_size(processor):
    tiles = tile_image(
        np.zeros((56, 560, 3), np.uint8), processor.tile_size, max_tiles=2, use_thumbnail=False
    )
    assert tiles.shape == (2, 56, 56, 3)


def test_tile_image_keeps_tiles_in_reading_order():
    bands = np.concatenate([np.full((56, 56, 3), c, np.uint8) for c in (10, 120, 240)], axis=1)
    out = tile_image(bands, tile_size=56, max_tiles=12, use_thumbnail=True)
    assert [int(t.mean()) for t in out[:3]] == [10, 120, 240]
    assert out[3, :, 0].mean() < 20 and out[3, :, -1].mean() > 230  # thumbnail of the whole image


@pytest.mark.parametrize("response", [None, "Joy."])
def test_count_tokens_matches_encoding_without_pixels(processor, response):
    sample = processor(QUERY, response, images=[frames(3), frames(1)], videos=[frames(2)])
    assert processor.count_tokens(QUERY, response, image_tiles=[3, 1], video_frames=[2]) == len(
        sample.input_ids
    )
    assert processor.count_tokens(QUERY, response) == len(processor(QUERY, response).input_ids)


def test_text_only_has_no_pixels(processor):
    sample = processor(QUERY, "Joy.")
    assert sample.pixel_values is None and sample.num_visual_tokens == 0
    assert decode(processor, sample.input_ids) == f"{SYSTEM}<|user|>\n{QUERY}{END_OF_PROMPT}Joy.<|end|>"


def test_truncation_drops_the_start_of_the_query_only(tiny_model_dir):
    query = "Ross said hello and Monica laughed. " * 10 + "Please determine which emotion label."
    unlimited = internvl.from_pretrained(tiny_model_dir, max_length=None)
    full = unlimited(query, "Joy.", videos=[frames(2)])
    limited = internvl.from_pretrained(tiny_model_dir, max_length=len(full.input_ids) - 7)
    sample = limited(query, "Joy.", videos=[frames(2)])
    assert sample.truncated and not full.truncated and len(sample.input_ids) == limited.max_length
    # Exactly the first 7 query tokens are gone: the query starts after the last </img> and its newline.
    query_start = int((full.input_ids == limited.vision.image_ids[2]).nonzero().max()) + 2
    expected = torch.cat([full.input_ids[:query_start], full.input_ids[query_start + 7 :]])
    assert torch.equal(sample.input_ids, expected)
    assert sample.num_visual_tokens == full.num_visual_tokens == 8
    text = decode(limited, sample.input_ids)
    assert text.startswith(SYSTEM + "<|user|>\nFrame1: ")
    assert text.endswith(
        "Monica laughed. Please determine which emotion label." + END_OF_PROMPT + "Joy.<|end|>"
    )
    assert decode(limited, sample.labels[sample.labels != IGNORE_INDEX]) == "Joy.<|end|>"


def test_a_sample_that_cannot_fit_raises_with_its_lengths(tiny_model_dir):
    processor = internvl.from_pretrained(tiny_model_dir, max_length=20)
    with pytest.raises(OverBudgetError, match=r"tokens > max_length 20.*never cut"):
        processor(QUERY, "Joy.", videos=[frames(4)])


def test_skip_raises_instead_of_truncating(tiny_model_dir):
    processor = internvl.from_pretrained(tiny_model_dir, over_budget="skip")
    length = len(processor(QUERY, "Joy.").input_ids)
    processor.max_length = length - 1
    with pytest.raises(OverBudgetError, match=rf"{length} tokens > max_length {length - 1}"):
        processor(QUERY, "Joy.")
    processor.max_length = length
    assert not processor(QUERY, "Joy.").truncated


def test_query_with_image_token_text_is_refused(processor):
    with pytest.raises(ValueError, match="IMG_CONTEXT"):
        processor("look: <IMG_CONTEXT>", "Joy.", videos=[frames(1)])
    with pytest.raises(ValueError, match=r"videos\[0\].*uint8"):
        processor(QUERY, videos=[frames(1).astype(np.float32)])


@pytest.mark.parametrize("side", ["right", "left"])
def test_collate_pads_ids_labels_and_mask(processor, side):
    long, short = processor(QUERY, "Joy.", videos=[frames(2)]), processor("Hi.", "Fear.")
    batch = processor.collate([long, short], padding_side=side)
    n, pad = len(short.input_ids), len(long.input_ids) - len(short.input_ids)
    keep = slice(0, n) if side == "right" else slice(pad, None)
    padding = slice(n, None) if side == "right" else slice(0, pad)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (2, n + pad)
    assert torch.equal(batch["input_ids"][0], long.input_ids)
    assert torch.equal(batch["input_ids"][1, keep], short.input_ids)
    assert torch.equal(batch["labels"][1, keep], short.labels)
    assert (batch["input_ids"][1, padding] == processor.tokenizer.pad_token_id).all()
    assert (batch["labels"][1, padding] == IGNORE_INDEX).all()
    assert batch["attention_mask"][1].sum() == n and (batch["attention_mask"][1, padding] == 0).all()
    assert torch.equal(batch["pixel_values"], long.pixel_values)
    assert processor.collate([short, short])["pixel_values"] is None


def test_model_runs_on_a_collated_batch(processor, model):
    samples = [
        processor(QUERY, "Joy.", videos=[frames(3)]),
        processor("The person says: 'no' <sentiment> positive or negative?", "Negative.", images=[frames(2)]),
        processor("Hi.", "Neutral."),
    ]
    with torch.no_grad():
        out = model(**processor.collate(samples))
    assert math.isfinite(out.loss.item())
    prompts = [processor(QUERY, None, videos=[frames(3)]), processor("Hi.", None)]
    batch = processor.collate(prompts, padding_side="left")
    batch.pop("labels")
    with torch.no_grad():
        generated = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert generated.shape[0] == 2 and generated.shape[1] <= batch["input_ids"].shape[1] + 3


@pytest.mark.parametrize(
    "config", ["[1, 2]", '{"model_type": "bert"}', '{"model_type": "internvl", "vision_config": 5}', "{"]
)
def test_a_malformed_model_directory_is_one_error_naming_it(tmp_path, config):
    from m2se.model.internvl import load_base, resolve_model_path

    (tmp_path / "config.json").write_text(config)
    with pytest.raises((ValueError, OSError), match=str(tmp_path)):
        internvl.from_pretrained(tmp_path)
    if '"internvl"' not in config:  # an InternVL model_type is taken as it is: loading tells
        with pytest.raises((ValueError, OSError), match=str(tmp_path)):
            resolve_model_path(tmp_path, tmp_path / "cache")
    with pytest.raises((ValueError, OSError), match=str(tmp_path)):
        load_base(tmp_path)


def test_pixel_values_match_transformers_normalisation(processor):
    """Tiles of the tile size, and tiles squashed to it (PIL bicubic), as GotOcr2's PIL processor gives them."""
    from transformers import GotOcr2ImageProcessorPil
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling

    reference = GotOcr2ImageProcessorPil(
        size={"height": 56, "width": 56},
        resample=PILImageResampling.BICUBIC,
        image_mean=IMAGENET_DEFAULT_MEAN,
        image_std=IMAGENET_DEFAULT_STD,
    )
    rng = np.random.default_rng(0)
    for shape in ((3, 56, 56, 3), (2, 40, 70, 3)):
        tiles = rng.integers(0, 256, shape, dtype=np.uint8)
        expected = reference(list(tiles), return_tensors="pt", input_data_format="channels_last").pixel_values
        torch.testing.assert_close(processor.vision.pixel_values(tiles), expected, atol=1e-5, rtol=0)


def test_uint8_pixels_are_the_tiles_and_normalise_to_the_float_ones(tiny_model_dir):
    bytes_processor = internvl.from_pretrained(tiny_model_dir, pixels="uint8")
    square, wide = frames(2), np.random.default_rng(1).integers(0, 256, (2, 40, 70, 3), dtype=np.uint8)
    for tiles in (square, wide):
        sample = bytes_processor(QUERY, videos=[tiles])
        assert sample.pixel_values.dtype == torch.uint8 and sample.pixel_values.shape == (2, 3, 56, 56)
        floats = bytes_processor.vision.pixel_values(tiles)
        torch.testing.assert_close(
            bytes_processor.model_inputs(bytes_processor.collate([sample]))["pixel_values"],
            floats,
            atol=1e-5,
            rtol=0,
        )
    assert torch.equal(
        bytes_processor(QUERY, videos=[square]).pixel_values, torch.from_numpy(square).permute(0, 3, 1, 2)
    )
    with pytest.raises(ValueError, match="pixels must be 'float32' or 'uint8'"):
        internvl.from_pretrained(tiny_model_dir, pixels="float16")

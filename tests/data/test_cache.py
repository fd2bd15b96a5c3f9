import json
import os

import numpy as np
import pytest
import torch

from m2se.data import internvl
from m2se.data.cache import FrameCache, build_cache, entry_path, main, settings_dir, tile_size_of
from m2se.data.datamodule import MultiTaskDataModule
from m2se.data.demo import write_clip
from m2se.data.records import load_records
from m2se.data.video import MediaLoader

SETTINGS = dict(num_frames=2, tile_size=56, max_tiles=2)


def loader(cache=None, **overrides) -> MediaLoader | FrameCache:
    settings = {**SETTINGS, **overrides}
    media = MediaLoader(
        settings["num_frames"],
        settings["tile_size"],
        settings["max_tiles"],
        resize=settings.get("resize", "decoder"),
    )
    return media if cache is None else FrameCache(media, cache)


def demo_files(demo_dir):
    return [demo_dir / "first_stage.json", demo_dir / "second_stage.json"]


@pytest.fixture(scope="module")
def demo_cache(demo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("frame-cache")
    summary = build_cache(demo_files(demo_dir), out, **SETTINGS, progress=False)
    return out, summary


@pytest.fixture(scope="module")
def demo_media(demo_dir):
    records = load_records(demo_dir / "second_stage.json").records
    videos = sorted({p for r in records for p in r.videos})[:4]
    images = sorted({p for r in records for p in r.images})[:4]
    return images, videos


def own_dataset(demo_dir, folder, videos: dict[str, np.ndarray | bytes | None]):
    """Video records of the demo pointed at clips written here (a clip of None is never written)."""
    items = [r for r in json.loads((demo_dir / "second_stage.json").read_text()) if "videos" in r]
    for item, (name, content) in zip(items, videos.items(), strict=False):
        item["videos"] = [name]  # beside own.json: its media root
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        elif content is not None:
            write_clip(folder / name, content)
    path = folder / "own.json"
    path.write_text(json.dumps(items[: len(videos)]))
    return path


def frames(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (6, 32, 48, 3), dtype=np.uint8)


def assert_same(cached: list[np.ndarray], decoded: list[np.ndarray]) -> None:
    assert len(cached) == len(decoded)
    for a, b in zip(cached, decoded, strict=True):
        assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape
        assert np.asarray(a).tobytes() == b.tobytes()


def test_build_caches_every_medium_once(demo_cache, demo_dir):
    out, summary = demo_cache
    media = {p for f in demo_files(demo_dir) for r in load_records(f).records for p in r.media}
    assert summary.videos + summary.images == len(media) and summary.videos > 0 and summary.images > 0
    assert summary.counts["cached"] == len(media) and not summary.failed
    folder = settings_dir(loader(), out)
    assert len(list(folder.glob("*.npy"))) == len(media) and not list(folder.glob(".*"))
    manifest = json.loads((folder / "cache.json").read_text())
    assert manifest == {
        **SETTINGS,
        "format": 1,
        "use_thumbnail": True,
        "backend": "pyav",
        "resize": "decoder",
    }


def test_loader_serves_cache_byte_identical_to_decoding(demo_cache, demo_media):
    cached_loader = loader(demo_cache[0])
    images, videos = demo_media
    cached = cached_loader.load(images, videos)
    assert (cached_loader.hits, cached_loader.misses) == (len(images) + len(videos), 0)
    # Served memory-mapped from the cache, not decoded.
    assert all(isinstance(a, np.memmap) for a in cached[0] + cached[1])
    decoded = loader().load(images, videos)
    assert_same(cached[0], decoded[0])
    assert_same(cached[1], decoded[1])


@pytest.mark.parametrize(
    "change", [{"num_frames": 3}, {"tile_size": 28}, {"max_tiles": 1}, {"resize": "pil"}]
)
def test_other_settings_miss_and_decode(demo_cache, demo_media, change):
    images, videos = demo_media
    other = loader(demo_cache[0], **change)
    result = other.load(images, videos)
    assert other.hits == 0 and other.misses == len(images) + len(videos)
    fresh = loader(**change).load(images, videos)
    assert_same(result[0], fresh[0])
    assert_same(result[1], fresh[1])


def test_touched_or_replaced_source_is_a_miss(demo_dir, tmp_path):
    source = own_dataset(demo_dir, tmp_path, {"a.mp4": frames(0), "b.mp4": frames(1)})
    out = tmp_path / "cache"
    assert build_cache([source], out, **SETTINGS, progress=False).counts["cached"] == 2
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    media = loader(out)
    media.load([], [a, b])
    assert (media.hits, media.misses) == (2, 0)

    stat = a.stat()
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    write_clip(b, frames(2))  # new content, new size and mtime
    media = loader(out)
    _, (frames_a, frames_b) = media.load([], [a, b])
    assert (media.hits, media.misses) == (0, 2)
    assert_same([frames_a, frames_b], loader().load([], [a, b])[1])
    # A rebuild caches the changed files again (the old entries are simply never read).
    assert build_cache([source], out, **SETTINGS, progress=False).counts["cached"] == 2


def test_second_run_finds_everything_already_there(demo_dir, tmp_path):
    source = own_dataset(demo_dir, tmp_path, {"a.mp4": frames(0), "b.mp4": frames(1)})
    out = tmp_path / "cache"
    build_cache([source], out, **SETTINGS, progress=False)
    # What a killed build leaves behind is a temporary file, never a half-written .npy.
    (settings_dir(loader(), out) / ".v-dead.123.tmp").write_bytes(b"half")
    summary = build_cache([source], out, **SETTINGS, workers=2, progress=False)
    assert summary.counts == {"already there": 2} and not summary.failed
    assert not list(settings_dir(loader(), out).glob(".*.tmp"))


def test_bad_media_are_counted_failures(demo_dir, tmp_path, capsys):
    source = own_dataset(
        demo_dir, tmp_path, {"good.mp4": frames(0), "missing.mp4": None, "corrupt.mp4": b"not a video" * 50}
    )
    args = [str(source), "--out", str(tmp_path / "cache"), "--num-frames", "2", "--tile-size", "56"]
    assert main([*args, "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "cached 1, already there 0, failed 2" in out
    assert "failed, missing file: 1" in out and "failed, corrupt video: 1" in out
    assert "Traceback" not in out
    assert main([*args, "--workers", "1", "--strict"]) == 2
    assert "cached 0, already there 1, failed 2" in capsys.readouterr().out


def test_datamodule_batches_identical_with_cache(demo_dir, tiny_model_dir, tmp_path):
    processor = internvl.from_pretrained(tiny_model_dir, max_length=1024)
    files = demo_files(demo_dir)
    build_cache(files, tmp_path, num_frames=2, tile_size=processor.tile_size, max_tiles=2, progress=False)

    def batches(frame_cache):
        dm = MultiTaskDataModule(
            sources=[{"path": str(f)} for f in files],
            mixtures={"all": [{"task": t, "weight": 1} for t in ("msa", "mer", "fer", "eri", "erc", "ecpe")]},
            mixture="all",
            processor=processor,
            num_frames=2,
            max_tiles=2,
            batch_size=4,
            num_batches=6,
            num_workers=0,
            val_fraction=0,
            seed=0,
            frame_cache=frame_cache,
        )
        dm.setup("fit")
        return list(dm.train_dataloader()), dm.media

    plain, _ = batches(None)
    cached, media = batches(str(tmp_path))
    assert media.hits == sum(len(r.media) for b in cached for r in b["records"]) > 0 and media.misses == 0
    for x, y in zip(plain, cached, strict=True):
        assert x.keys() == y.keys()
        for key, value in x.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, y[key]), key
        assert [r.where for r in x["records"]] == [r.where for r in y["records"]]


def test_datamodule_warns_when_the_cache_has_other_settings(demo_dir, tiny_model_dir, tmp_path, capsys):
    build_cache(demo_files(demo_dir)[:1], tmp_path, num_frames=2, tile_size=448, max_tiles=2, progress=False)
    processor = internvl.from_pretrained(tiny_model_dir)  # 56-px tiles: a 448-px cache cannot serve it
    with pytest.warns(
        UserWarning, match=r"has no entries for n2-s56-t2.*it holds: n2-s448-t2.*--tile-size 56"
    ):
        MultiTaskDataModule(
            sources=[],
            mixtures={"first": {"msa": 1}},
            processor=processor,
            num_frames=2,
            max_tiles=2,
            frame_cache=str(tmp_path),
        )
    assert (
        main(
            [
                str(demo_files(demo_dir)[0]),
                "--out",
                str(tmp_path),
                "--num-frames",
                "2",
                "--max-tiles",
                "2",
                "--model",
                str(tiny_model_dir),
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert settings_dir(loader(num_frames=2, tile_size=56, max_tiles=2), tmp_path).is_dir()


def test_unwritable_out_and_empty_files_are_one_line(demo_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    size = ["--tile-size", "56", "--workers", "1"]
    assert main([str(demo_dir / "test/msa.json"), "--out", str(blocker / "cache"), *size]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "file/cache" in err and "\n" not in err
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main([str(empty), "--out", str(tmp_path / "c"), *size]) == 1
    assert capsys.readouterr().err.strip() == f"error: {empty}: no records"


def test_the_tile_size_comes_from_the_flag_or_the_model_directory(tiny_model_dir, demo_dir, tmp_path, capsys):
    assert tile_size_of(tiny_model_dir) == 56 == internvl.from_pretrained(tiny_model_dir).tile_size
    (tmp_path / "config.json").write_text('{"vision_config": {"image_size": 448}}')  # an original InternVL2
    assert tile_size_of(tmp_path) == 448
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match=r"config\.json: no square vision_config\.image_size"):
        tile_size_of(tmp_path)
    with pytest.raises(SystemExit):  # neither: the tile size is the model's, never guessed
        main([str(demo_dir / "test/msa.json"), "--out", str(tmp_path / "cache")])
    assert "--tile-size PIXELS or --model DIR" in capsys.readouterr().err


@pytest.mark.parametrize(
    "damage",
    [
        lambda a: a.astype(np.float32),  # another dtype
        lambda a: a[:, :-1],  # another tile size
        lambda a: a[:0],  # nothing
        lambda a: np.zeros((2, 3)),  # not tiles at all
    ],
)
def test_a_damaged_cache_entry_is_decoded_not_served(demo_cache, demo_media, tmp_path, damage):
    import shutil

    folder = tmp_path / "cache"
    shutil.copytree(demo_cache[0], folder)
    images, _ = demo_media
    entry = entry_path(settings_dir(loader(), folder), "image", images[0])
    np.save(entry, damage(np.load(entry)))
    damaged = loader(folder)
    served = damaged.load(images[:1], [])[0]
    assert damaged.misses == 1 and damaged.hits == 0
    assert_same(served, loader().load(images[:1], [])[0])

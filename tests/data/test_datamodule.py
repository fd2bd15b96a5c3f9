import json

import pytest

from m2se.data import internvl
from m2se.data.datamodule import MultiTaskDataModule, Source
from m2se.data.records import RecordError
from m2se.data.video import MediaError
from m2se.tasks import EMOVERSE_TASKS

MIXTURES = {
    "first": [{"task": "msa", "weight": 3}, {"task": "mer", "weight": 1}, {"task": "fer", "weight": 3}],
    "second": [{"task": t, "weight": w} for t, w in (("msa", 1), ("eri", 3), ("erc", 3), ("ecpe", 3))],
}


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return internvl.from_pretrained(tiny_model_dir, max_length=1024)


def make(demo_dir, processor, **overrides):
    args = dict(
        sources=[
            {"path": str(demo_dir / "first_stage.json"), "mixtures": ["first"]},
            {"path": str(demo_dir / "second_stage.json"), "mixtures": ["second"]},
        ],
        mixtures=MIXTURES,
        processor=processor,
        test_sources={
            t: {"path": str(demo_dir / f"test/{t}.json"), "media_root": str(demo_dir)} for t in EMOVERSE_TASKS
        },
        num_frames=2,
        max_tiles=2,
        batch_size=4,
        num_workers=0,
        val_fraction=0.05,
        seed=0,
    )
    return MultiTaskDataModule(**{**args, **overrides})


@pytest.fixture(scope="module")
def datamodule(demo_dir, processor):
    dm = make(demo_dir, processor)
    dm.setup("fit")
    return dm


def test_report_counts_every_split(datamodule, demo_dir):
    first = json.loads((demo_dir / "first_stage.json").read_text())
    second = json.loads((demo_dir / "second_stage.json").read_text())
    assert len(datamodule.train_records) + len(datamodule.val_records) == len(first) + len(second)
    # 5 % of each file is held out, at random, and never trained on.
    assert len(datamodule.val_records) == round(len(first) * 0.05) + round(len(second) * 0.05)
    assert not {r.where for r in datamodule.val_records} & {r.where for r in datamodule.train_records}
    table = datamodule.report.render()
    assert table.splitlines()[0].split()[:4] == ["task", "train", "val", "test"]
    assert all(f"\n{task} " in "\n" + table for task in EMOVERSE_TASKS)
    assert datamodule.report.counts["ecpe"]["test"] == 40


def test_train_batches_follow_the_active_mixture_and_its_files(datamodule):
    loader = datamodule.train_dataloader()
    tasks = set()
    for _, batch in zip(range(30), loader, strict=False):
        assert batch["input_ids"].shape[0] == 4 and len(set(batch["tasks"])) == 1
        image_tokens = int((batch["input_ids"] == datamodule.processor.vision.image_token_id).sum())
        assert image_tokens == batch["pixel_values"].shape[0] * datamodule.processor.vision.tokens_per_tile
        assert {r.source for r in batch["records"]} == {"first_stage.json"}
        tasks.add(batch["task"])
    assert tasks == {"msa", "mer", "fer"}
    datamodule.set_mixture("second")
    try:
        batches = [b for _, b in zip(range(30), loader, strict=False)]
        assert {b["task"] for b in batches} == {"msa", "eri", "erc", "ecpe"}
        assert {r.source for b in batches for r in b["records"]} == {"second_stage.json"}
    finally:
        datamodule.set_mixture("first")
    with pytest.raises(ValueError, match="unknown mixture 'third'"):
        datamodule.set_mixture("third")


def test_val_and_test_loaders(datamodule):
    val = list(datamodule.val_dataloader())
    assert {b["task"] for b in val} == {"msa", "mer", "fer"}  # the active mixture's tasks
    tests = datamodule.test_dataloader()
    assert len(tests) == 6
    batch = next(iter(tests[list(datamodule.test_records).index("erc")]))
    assert batch["task"] == "erc"
    assert (batch["labels"] == -100).all()  # prompts only: generation
    assert (batch["attention_mask"][:, -1] == 1).all()  # left padding


def test_missing_media_is_a_counted_skip_or_an_error(tmp_path, demo_dir, processor):
    records = json.loads((demo_dir / "test/erc.json").read_text())[:4]
    records[1]["videos"] = ["media/clips/absent.mp4"]
    path = tmp_path / "erc.json"
    path.write_text(json.dumps(records))
    dm = make(
        demo_dir,
        processor,
        sources=[{"path": str(path), "media_root": str(demo_dir)}],
        mixtures={"m": [{"task": "erc", "weight": 1}]},
        mixture="m",
        val_fraction=0,
        test_sources=None,
    )
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert len(batch["records"]) == 3 and batch["input_ids"].shape[0] == 3
    assert batch["skipped"][0].where == "erc.json:1" and dm.runtime_skips == {"media error": 1}
    strict = make(
        demo_dir,
        processor,
        sources=[{"path": str(path), "media_root": str(demo_dir)}],
        mixtures={"m": [{"task": "erc"}]},
        mixture="m",
        val_fraction=0,
        on_media_error="raise",
    )
    strict.setup("fit")
    with pytest.raises(MediaError, match=r"erc.json:1: .*absent.mp4"):
        list(strict.train_dataloader())


def test_over_budget_samples_are_counted(demo_dir, tiny_model_dir):
    tight = internvl.from_pretrained(tiny_model_dir, max_length=40, over_budget="skip")
    dm = make(
        demo_dir,
        tight,
        sources=[Source(str(demo_dir / "test/ecpe.json"), str(demo_dir))],
        mixtures={"m": [{"task": "ecpe", "weight": 1}]},
        mixture="m",
        val_fraction=0,
        test_sources=None,
    )
    dm.setup("fit")
    assert dm.report.over("ecpe") == len(dm.train_records)
    assert "over-budget samples are skipped" in dm.report.render()
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["input_ids"] is None and dm.runtime_skips["over budget"] == 4


def test_bad_records_raise_or_are_reported(tmp_path, demo_dir, processor):
    good = json.loads((demo_dir / "test/msa.json").read_text())[:3]
    path = tmp_path / "msa.json"
    path.write_text(json.dumps([*good, {**good[0], "response": "Meh."}]))
    args = dict(
        sources=[{"path": str(path), "media_root": str(demo_dir)}],
        mixtures={"m": [{"task": "msa", "weight": 1}]},
        mixture="m",
        val_fraction=0,
        test_sources=None,
    )
    with pytest.raises(RecordError, match=r"msa.json:3: unknown label 'Meh.' for task msa"):
        make(demo_dir, processor, **args).setup("fit")
    dm = make(demo_dir, processor, on_bad_record="skip", **args)
    dm.setup("fit")
    assert len(dm.train_records) == 3 and "skipped at load: unknown label 1" in dm.report.render()


@pytest.mark.parametrize("workers", [0, 2])
def test_datamodule_state_resumes_after_the_last_batch_training_received(demo_dir, processor, workers):
    def wheres(batch):
        return [r.where for r in batch["records"]]

    dm = make(demo_dir, processor, num_workers=workers)
    dm.setup("fit")
    it = iter(dm.train_dataloader())
    [next(it) for _ in range(3)]  # with workers, several more batches are drawn by now
    state = dm.state_dict()
    rest = [wheres(next(it)) for _ in range(4)]
    del it
    resumed = make(demo_dir, processor, num_workers=workers)
    resumed.setup("fit")
    resumed.load_state_dict(state)
    it2 = iter(resumed.train_dataloader())
    assert [wheres(next(it2)) for _ in range(4)] == rest


def test_the_training_loader_draws_nothing_until_its_first_batch(demo_dir, processor):
    # Lightning calls iter() before it sets the epoch; with workers an eager start would draw the
    # epoch's first batches with the previous epoch's seed.
    def first_batch(set_epoch_after_iter: bool):
        dm = make(demo_dir, processor, num_workers=2)
        dm.setup("fit")
        loader = dm.train_dataloader()
        if not set_epoch_after_iter:
            dm.sampler.set_epoch(1)
        it = iter(loader)
        if set_epoch_after_iter:
            dm.sampler.set_epoch(1)
        return [r.where for r in next(it)["records"]]

    assert first_batch(set_epoch_after_iter=True) == first_batch(set_epoch_after_iter=False)


def test_test_files_are_needed_only_to_test(demo_dir, processor):
    tests = {
        "erc": {"path": str(demo_dir / "test/erc.json"), "media_root": str(demo_dir)},
        "mer": {"path": str(demo_dir / "test/absent.json")},
    }
    dm = make(demo_dir, processor, test_sources=tests)
    dm.setup("fit")
    assert list(dm.test_records) == ["erc"]
    assert "test files not found (needed only to test): mer (see docs/DATA.md)" in dm.report.render()
    with pytest.raises(RecordError, match=r"absent.json: no such file \(see docs/DATA.md\)"):
        dm.setup("test")


def test_truncation_is_counted(demo_dir, tiny_model_dir):
    tight = internvl.from_pretrained(tiny_model_dir, max_length=200)
    dm = make(
        demo_dir,
        tight,
        sources=[Source(str(demo_dir / "test/ecpe.json"), str(demo_dir))],
        mixtures={"m": [{"task": "ecpe", "weight": 1}]},
        mixture="m",
        val_fraction=0,
        test_sources=None,
    )
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["input_ids"].shape == (4, 200) and dm.truncated == 4 and not dm.runtime_skips
    assert (batch["labels"] != -100).any(dim=1).all()  # the answers survive truncation


def test_files_may_share_records_but_validation_never_leaks(tmp_path, demo_dir, processor):
    """EmoVerse's stage files share MOSEI msa records; a shared record is held out everywhere or nowhere."""
    first = json.loads((demo_dir / "first_stage.json").read_text())
    msa = [r for r in first if "<sentiment>" in r["query"]]
    shared = tmp_path / "second_stage.json"
    shared.write_text(json.dumps(msa[: len(msa) // 2]))
    sources = [
        {"path": str(demo_dir / "first_stage.json"), "mixtures": ["first"]},
        {"path": str(shared), "media_root": str(demo_dir), "mixtures": ["second"]},
    ]
    dm = make(
        demo_dir,
        processor,
        sources=sources,
        val_fraction=0.2,
        mixtures={"first": MIXTURES["first"], "second": [{"task": "msa", "weight": 1}]},
    )
    dm.setup("fit")

    def key(r):
        return r.query, r.response, r.media

    held = {key(r) for r in dm.val_records}
    trained = {key(r) for r in dm.train_records}
    assert held and not held & trained and len(held) == len(dm.val_records)
    in_second = {key(r) for r in dm.train_records if r.source == "second_stage.json"}
    assert in_second and in_second <= {key(r) for r in dm.train_records if r.source == "first_stage.json"}

    duplicate_val = make(
        demo_dir, processor, val_sources=[{"path": str(shared), "media_root": str(demo_dir)}]
    )
    with pytest.raises(RecordError, match="second_stage.json:0: duplicate record"):
        duplicate_val.setup("fit")


def test_lightning_sets_the_samplers_epoch(datamodule):
    # Lightning calls set_epoch on loader.sampler and loader.batch_sampler.sampler only; before the
    # sampler answered there, every epoch replayed epoch 0's batches.
    from lightning.fabric.utilities.data import _set_sampler_epoch

    loader = datamodule.train_dataloader()
    before = datamodule.sampler.epoch
    try:
        _set_sampler_epoch(loader, before + 1)
        assert datamodule.sampler.epoch == before + 1
    finally:
        datamodule.sampler.set_epoch(before)


def test_a_training_file_left_without_records_is_one_line(tmp_path, tiny_model_dir):
    path = tmp_path / "first_stage.json"
    path.write_text(json.dumps([{"query": "?", "response": "Joy."}]))
    datamodule = MultiTaskDataModule(
        [{"path": str(path)}], {"first": [{"task": "erc"}]}, internvl.from_pretrained(tiny_model_dir),
        on_bad_record="skip", num_workers=0,
    )  # fmt: skip
    with pytest.raises(RecordError, match=rf"{path}: no records \(1 skipped\)"):
        datamodule.setup("fit")


@pytest.mark.parametrize("on_bad_record", ["raise", "skip"])
def test_control_tokens_written_in_text_are_refused(tmp_path, demo_dir, tiny_model_dir, on_bad_record):
    items = json.loads((demo_dir / "first_stage.json").read_text())
    records = [r for r in items if "<sentiment>" in r["query"]][:2] + [
        r for r in items if "<expression>" in r["query"]
    ][:1]
    records[1]["query"] = records[1]["query"].replace("The person says: ", "The person says: <IMG_CONTEXT> ")
    records[2]["response"] += "<|end|>"  # a free-text answer that would end the turn early
    path = tmp_path / "first_stage.json"
    path.write_text(json.dumps(records))
    datamodule = MultiTaskDataModule(
        [{"path": str(path), "media_root": str(demo_dir)}], {"first": [{"task": "msa"}]},
        internvl.from_pretrained(tiny_model_dir), on_bad_record=on_bad_record, num_workers=0,
        val_fraction=0,
    )  # fmt: skip
    if on_bad_record == "raise":
        with pytest.raises(
            RecordError,
            match="first_stage.json:1: text contains the tokenizer's control token '<IMG_CONTEXT>'",
        ):
            datamodule.setup("fit")
        return
    datamodule.setup("fit")
    assert len(datamodule.train_records) == 1 and datamodule.report.skipped == {"control token": 2}

"""Two CPU processes (gloo) each update half the records; compute() on both equals one process on all."""

import json

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from m2se.dialogue.labels import NATIVE
from m2se.tasks import TaskMetrics

ECPE = (
    ["3_joy,1;3_joy,1", "", "2_anger,2", "no idea", "5_fear,5;5_fear,4", "6_sadness,2;x", "1_joy,1"],
    ["3_joy,1;3_joy,2", "4_surprise,4", "", "7_disgust,7", "5_fear,5", "6_sadness,2", "1_joy,1"],
)
BATCHES = {
    ("ecpe", "semeval"): (*ECPE, None),
    ("ecpe", "emoverse"): (*ECPE, None),
    ("erc", "semeval"): (
        ["Joy.", "Anger.", "hmm", "Neutral.", "Joy.", "Fear."],
        ["Joy.", "Joy.", "Anger.", "Neutral.", "Sadness.", "Fear."],
        None,
    ),
    ("msa", "semeval"): (
        ["Positive.", "Negative.", "?", "Positive.", "Negative."],
        ["Positive.", "Positive.", "Negative.", "Positive.", "Negative."],
        [{"score": 1.0}, {"score": 0.0}, {"score": -2.0}, {"score": 0.0}, {}],
    ),
    # rank 0 never sees an emorynlp record: the ranks must still agree on the corpora before syncing
    ("erc_dialog", "semeval"): (
        ["joyful", "Mad", "sad", "Joyful", "angry", "fear"],
        ["joyful", "Mad", "neutral", "Sad", "angry", "fear"],
        [
            {"dataset": d, "labels": list(NATIVE[d]), "native": g}
            for d, g in [
                ("meld", "joyful"),
                ("emorynlp", "Mad"),
                ("meld", "neutral"),
                ("emorynlp", "Sad"),
                ("meld", "angry"),
                ("meld", "fear"),
            ]
        ],
    ),
    ("eri", "semeval"): (
        ["she is happy because of the gift", "", "he is angry at the delay"],
        ["she is happy because she got a gift", "he feels sad", "he is angry about the long delay"],
        None,
    ),
}


def scores_for(rank: int | None) -> dict[str, dict]:
    """All records (rank None), or every other record starting at ``rank``."""
    out = {}
    for (task, protocol), (predictions, references, meta) in BATCHES.items():
        part = slice(None) if rank is None else slice(rank, None, 2)
        metrics = TaskMetrics(task, protocol)
        metrics.update(predictions[part], references[part], None if meta is None else meta[part])
        out[f"{task}/{protocol}"] = metrics.compute()
    return out


def _worker(rank: int, store: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump(scores_for(rank), f)
    finally:
        dist.destroy_process_group()


def test_two_processes_agree_with_one(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    expected = scores_for(None)
    half = scores_for(0)
    # Otherwise this would test nothing: one half alone scores differently from the whole.
    assert all(half[name]["count"] < expected[name]["count"] for name in expected)
    assert half["ecpe/semeval"]["pair_f1"] != pytest.approx(expected["ecpe/semeval"]["pair_f1"])
    for rank in range(2):
        found = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert found.keys() == expected.keys()
        for name, values in expected.items():
            assert found[name] == pytest.approx(values, abs=1e-6), f"rank {rank}, {name}"

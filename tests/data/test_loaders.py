"""Evaluation's and prediction's batches: one task each, by prompt length, every record once."""

from m2se.data.loaders import grouped
from m2se.data.records import Record


def _records(tasks: str) -> list[Record]:
    return [Record(query=f"q{i}", response="", task=t, index=i) for i, t in enumerate(tasks)]


def test_without_lengths_batches_keep_record_order_per_task():
    batches = list(grouped(_records("aabab"), None, 2, None))
    assert batches == [[0, 1], [3], [2, 4]]


def test_with_lengths_batches_go_longest_first_within_each_task():
    records = _records("aaaaabb")
    lengths = [5, 90, 7, 88, 6, 30, 40]
    batches = list(grouped(records, None, 2, None, lengths))
    assert batches == [[1, 3], [2, 4], [0], [6, 5]]
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    unsorted = sum(len(b) * max(lengths[i] for i in b) for b in grouped(records, None, 2, None))
    assert (padded, unsorted) == (279, 442)  # 180 + 14 + 5 + 80 against 180 + 176 + 6 + 80


def test_limit_and_tasks_apply_before_sorting():
    records = _records("aaab")
    assert list(grouped(records, ["a"], 8, 2, [1, 9, 50, 3])) == [[1, 0]]

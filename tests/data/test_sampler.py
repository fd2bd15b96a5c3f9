from collections import Counter
from itertools import islice

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from m2se.data.sampler import TaskWeightedBatchSampler

SIZES = {"msa": 100, "mer": 50, "fer": 10, "ecpe": 7}
MIXTURES = {"first": {"msa": 3, "mer": 1, "fer": 3}, "second": {"ecpe": 1, "mer": 1}}


def task_indices(sizes: dict[str, int]) -> dict[str, list[int]]:
    """Disjoint, consecutive index ranges per task, in the order given."""
    indices, start = {}, 0
    for task, size in sizes.items():
        indices[task] = list(range(start, start + size))
        start += size
    return indices


def owners(indices: dict[str, list[int]]) -> dict[int, str]:
    return {i: task for task, task_range in indices.items() for i in task_range}


TASK_OF = owners(task_indices(SIZES))


def make(batch_size=4, mixtures=MIXTURES, mixture="first", sizes=SIZES, **kwargs) -> TaskWeightedBatchSampler:
    return TaskWeightedBatchSampler(task_indices(sizes), batch_size, mixtures, mixture, **kwargs)


def task_of(batch: list[int], owner: dict[int, str] = TASK_OF) -> str:
    tasks = {owner[i] for i in batch}
    assert len(tasks) == 1, f"batch {batch} mixes tasks {tasks}"
    return tasks.pop()


def trained(sampler: TaskWeightedBatchSampler):
    """Iterate as the training loader does: every batch handed out is reported as consumed."""
    for batch in sampler:
        sampler.consume()
        yield batch


def rates(sampler: TaskWeightedBatchSampler) -> dict[str, float]:
    owner = owners(sampler.task_indices)
    drawn = Counter(task_of(batch, owner) for batch in sampler)
    return {task: count / len(sampler) for task, count in drawn.items()}


def test_task_frequencies_follow_the_weights():
    observed = rates(make(batch_size=1, num_batches=20_000))
    assert observed.keys() == {"msa", "mer", "fer"}
    for task, expected in {"msa": 3 / 7, "mer": 1 / 7, "fer": 3 / 7}.items():
        assert observed[task] == pytest.approx(expected, abs=0.02), task


@pytest.mark.parametrize(("temperature", "expected_msa"), [(None, 0.8), (1.0, 0.8), (2.0, 2 / 3), (1e6, 0.5)])
def test_size_based_mixture_with_temperature(temperature, expected_msa):
    sizes = {"msa": 400, "mer": 100}
    sized = {"sized": {"msa": None, "mer": None}}
    sampler = make(1, sized, "sized", sizes, temperature=temperature, num_batches=20_000)
    assert rates(sampler)["msa"] == pytest.approx(expected_msa, abs=0.02)


def test_same_seed_and_epoch_give_the_same_sequence():
    assert list(make(seed=1)) == list(make(seed=1))
    assert list(make(seed=1)) != list(make(seed=2))
    later = make(seed=1)
    later.set_epoch(1)
    assert list(later) != list(make(seed=1))


def test_every_batch_is_full_and_single_task():
    batches = list(make(batch_size=3, num_batches=500))
    assert all(len(batch) == 3 for batch in batches)
    assert {task_of(batch) for batch in batches} == {"msa", "mer", "fer"}


def test_each_pass_covers_a_task_before_repeating_and_batches_never_repeat_an_index():
    # fer has 10 records and batch_size 4, so batches straddle passes.
    order: dict[str, list[int]] = {}
    for batch in make(batch_size=4, num_batches=300):
        assert len(set(batch)) == len(batch)
        order.setdefault(task_of(batch), []).extend(batch)
    for task, indices in order.items():
        size = SIZES[task]
        passes = [indices[start : start + size] for start in range(0, len(indices) - size + 1, size)]
        assert passes, task
        assert all(sorted(p) == task_indices(SIZES)[task] for p in passes), task


def test_len_is_records_over_batch_size_times_replicas():
    assert len(make(batch_size=4)) == 40  # (100 + 50 + 10) / 4
    assert len(make(batch_size=7)) == 23  # ceil(160 / 7)
    assert len(make(batch_size=7, drop_last=True)) == 22
    assert len(make(batch_size=4, num_replicas=2, rank=1)) == 20
    assert len(make(num_batches=9)) == len(list(make(num_batches=9))) == 9
    assert (make().num_replicas, make().rank) == (1, 0)  # torch.distributed not initialised


def test_switching_mixture_takes_effect_from_the_next_batch():
    sampler = make(num_batches=200)
    batches = trained(sampler)
    before = [task_of(batch) for batch in islice(batches, 20)]
    sampler.set_mixture("second")
    after = [task_of(batch) for batch in batches]
    assert sampler.mixture == "second"
    assert "ecpe" not in before and set(before) <= {"msa", "mer", "fer"}
    assert set(after) == {"ecpe", "mer"} and len(after) == 180


def test_replicas_draw_the_same_task_and_disjoint_samples():
    ranks = [make(batch_size=4, num_replicas=2, rank=rank, num_batches=300) for rank in (0, 1)]
    for first, second in zip(*ranks, strict=True):
        assert task_of(first) == task_of(second)
        assert not set(first) & set(second)  # fer (10 records) wraps within steps here too


def test_resume_after_a_mixture_switch_replays_the_timeline():
    reference = make(num_batches=60)
    batches = trained(reference)
    expected = list(islice(batches, 5))
    reference.set_mixture("second")
    expected += list(batches)

    interrupted = make(num_batches=60)
    batches = trained(interrupted)
    seen = list(islice(batches, 5))
    interrupted.set_mixture("second")
    seen += list(islice(batches, 5))
    resumed = make(num_batches=60)
    resumed.load_state_dict(interrupted.state_dict())
    assert seen + list(trained(resumed)) == expected
    assert resumed.mixture == "second"
    assert resumed.batches_per_task == reference.batches_per_task


def test_resume_without_a_switch():
    expected = list(make(num_batches=30, seed=3))
    interrupted = make(num_batches=30, seed=3)
    head = list(islice(trained(interrupted), 5))
    resumed = make(num_batches=30, seed=3)
    resumed.load_state_dict(interrupted.state_dict())
    assert head + list(trained(resumed)) == expected
    assert list(resumed) == expected  # the next iteration starts the epoch afresh


def test_batches_drawn_ahead_but_never_trained_are_not_skipped_on_resume():
    # A loader with workers draws ahead of training: the state counts what training received.
    expected = list(make(num_batches=30, seed=5))
    interrupted = make(num_batches=30, seed=5)
    drawn = iter(interrupted)
    head = list(islice(drawn, 12))  # drawn by the loader ...
    for _ in range(8):  # ... of which training received 8
        interrupted.consume()
    resumed = make(num_batches=30, seed=5)
    resumed.load_state_dict(interrupted.state_dict())
    assert head[:8] + list(trained(resumed)) == expected


def test_a_scheduled_switch_is_exact_however_far_the_loader_draws_ahead():
    def run(ahead: int, interrupt_at: int | None = None) -> list[str]:
        sampler = make(num_batches=20)
        sampler.schedule_mixture("second", after_batches=7)
        drawn = iter(sampler)
        tasks, pending = [], [next(drawn) for _ in range(ahead)]
        while pending:
            tasks.append(task_of(pending.pop(0)))
            sampler.consume()
            if len(tasks) == interrupt_at:  # a fresh sampler continues from the saved state
                state, sampler = sampler.state_dict(), make(num_batches=20)
                sampler.load_state_dict(state)
                drawn, pending = iter(sampler), []
            pending += list(islice(drawn, 1 if pending or tasks else ahead))
        return tasks

    reference = run(ahead=1)
    assert set(reference[:7]) <= {"msa", "mer", "fer"} and set(reference[7:]) <= {"ecpe", "mer"}
    assert len(reference) == 20
    assert run(ahead=4) == reference
    assert run(ahead=4, interrupt_at=5) == run(ahead=4, interrupt_at=9) == reference


def test_a_switch_scheduled_at_an_epoch_sets_that_epochs_length():
    sampler = make(batch_size=4)  # first: 160 records -> 40 batches; second: 57 -> 15
    sampler.schedule_mixture("second", at_epoch=1)
    assert len(sampler) == 40 and len(list(trained(sampler))) == 40
    assert len(sampler) == 15  # asked before set_epoch, as Lightning does
    sampler.set_epoch(1)
    batches = list(trained(sampler))
    assert len(batches) == 15 and {task_of(b) for b in batches} <= {"ecpe", "mer"}
    assert sampler.mixture == "second" and sampler.epoch_start == 40


def test_a_state_saved_at_epoch_end_resumes_into_the_next_epoch():
    finished = make(num_batches=20)
    list(trained(finished))
    resumed = make(num_batches=20)
    resumed.load_state_dict(finished.state_dict())
    resumed.set_epoch(1)
    fresh = make(num_batches=20)
    fresh.set_epoch(1)
    assert list(resumed) == list(fresh)


@pytest.mark.parametrize(
    ("mixtures", "mixture", "message"),
    [
        (MIXTURES, "third", "unknown mixture 'third'"),
        ({"first": {"msa": 1, "nope": 1}}, "first", "mixture 'first': task 'nope' has no records"),
        ({"first": {"msa": 1, "empty": 1}}, "first", "mixture 'first': task 'empty' has no records"),
        ({"first": {"msa": 1, "mer": 0}}, "first", "mixture 'first': task 'mer' has non-positive weight 0"),
        ({"first": {"msa": 1}, "second": {}}, "first", "mixture 'second' has no tasks"),
        ({"first": {"msa": 1, "mer": None}}, "first", "mixture 'first': give every task a weight"),
    ],
)
def test_invalid_mixtures_are_named(mixtures, mixture, message):
    with pytest.raises(ValueError, match=message):
        make(mixtures=mixtures, mixture=mixture, sizes={**SIZES, "empty": 0})


def test_invalid_arguments_and_switch_are_named():
    with pytest.raises(ValueError, match="unknown mixture 'third'"):
        make().set_mixture("third")
    with pytest.raises(ValueError, match="rank 2 is outside num_replicas=2"):
        make(num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="temperature must be positive"):
        make(temperature=0)


def test_feeds_a_dataloader():
    dataset = TensorDataset(torch.arange(sum(SIZES.values())))
    loader = DataLoader(dataset, batch_sampler=make(batch_size=4), num_workers=0)
    batches = [batch.tolist() for (batch,) in loader]
    assert len(batches) == len(loader) == 40
    assert all(len(batch) == 4 and task_of(batch) for batch in batches)


@pytest.mark.parametrize("key", ["position", "epoch", "epoch_start"])
def test_a_state_with_negative_positions_is_refused(key):
    sampler = make()
    state = {**sampler.state_dict(), key: -3}  # a forged checkpoint: iteration would start before the epoch
    with pytest.raises(ValueError, match="resume: the sampler state holds negative positions"):
        make().load_state_dict(state)

"""Generation speed: batched greedy answers (left padding) against one sample at a time, on the same inputs.

    python bench/eval.py [--model tiny|internvl2_2b|internvl2_4b|PATH] [--task erc] [--samples 32]
                         [--batch 1 4 16] [--max-new-tokens K] [--until-eos] [--frames 8] [--threads N]

Evaluation's path, piece by piece: the demo test file of ``--task`` (written to a temporary folder)
is read with ``load_records``, encoded as prompts by ``EncodedDataset(generation=True)`` and
batched by the left-padding ``Collator`` in record order; ``M2SEModule``
(base + a fresh LoRA, ``LoadSettings`` defaults: bf16 on CUDA, fp32 on CPU) answers greedily.
Inputs are encoded once and not timed (bench/data.py times loading). Last, the padding's share of
the prompt tokens over all the demo's test tasks, batched in record order and by prompt length (the
test and predict loaders' way, ``m2se.data.loaders.grouped``).

Batch 1 is the one-at-a-time loop and the reference: every other batch size must give the same
answers, since left padding done right changes nothing a sample sees. Each batch size runs one
untimed batch first, then all samples.

By default every sample gets exactly ``max_new_tokens`` new tokens (``min_new_tokens`` = max, so
EOS cannot end a sample early): a random model's EOS would otherwise decide the workload.
``--until-eos`` stops at EOS as evaluation does. The count is the task's ``max_new_tokens`` unless
``--max-new-tokens`` sets it. The call is ``M2SEModule.generate_answers``' own ``model.generate``
call plus those two settings; the bench first checks that it answers as ``generate_answers`` does.

- ``tiny``: the tiny random InternVL (56-px tiles, 4 tokens per tile).
- ``internvl2_2b`` / ``internvl2_4b`` (CUDA only): InternVL2-2B/4B's shapes with random bf16 weights
  and the tiny tokenizer, as bench/train_step.py builds them; the demo's pictures are resized to
  448-px tiles (256 tokens each), so a video of 8 frames is 2048 visual tokens.
- ``PATH``: a native or original InternVL directory (``resolve_model_path``).

On a CPU that other processes share, pass ``--threads 1``: torch's threads then wait on each other
and made the tiny model's generation up to 30 times slower here.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from report import PeakRss  # bench/ is on sys.path when run
from train_step import INTERNVL2, write_random_internvl2

from m2se.data import internvl
from m2se.data.dataset import Collator, EncodedDataset
from m2se.data.demo import TEST_TASKS, write_demo_dataset
from m2se.data.loaders import grouped
from m2se.data.records import load_records
from m2se.data.report import token_lengths
from m2se.data.video import MediaLoader
from m2se.model.backbone import LoadSettings
from m2se.model.internvl import InternVL, resolve_model_path
from m2se.model.module import M2SEModule
from m2se.model.tiny import build_tiny_internvl
from m2se.tasks import TASKS


@dataclass
class Result:
    batch: int
    seconds: float
    samples: int
    new_tokens: int
    peak_bytes: int
    answers: list[str]


@torch.no_grad()
def generate(
    module: M2SEModule, batch: dict, task: str, max_new_tokens: int, forced: bool
) -> tuple[list[str], int]:
    """(answers, new tokens generated): ``generate_answers``' call with the number of new tokens set."""
    tokenizer = module.tokenizer
    out = module.model.generate(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=batch["pixel_values"],
        max_new_tokens=max_new_tokens,
        min_new_tokens=max_new_tokens if forced else None,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    new = out[:, batch["input_ids"].shape[1] :]
    answers = tokenizer.batch_decode(new, skip_special_tokens=True)
    # Finished samples are padded on the right; with forcing, every position is a new token.
    return answers, int(new.numel() if forced else (new != tokenizer.pad_token_id).sum())


def batches_of(items: list, size: int, collator: Collator, device: torch.device) -> list[dict]:
    tensors = ("input_ids", "attention_mask", "pixel_values")
    batches = [collator(items[start : start + size]) for start in range(0, len(items), size)]
    return [{k: b[k].to(device) if k in tensors else b[k] for k in b} for b in batches]


def run(module: M2SEModule, batches: list[dict], task: str, new_tokens: int, forced: bool) -> Result:
    """Answers for every sample, timed, after one untimed batch."""
    device = batches[0]["input_ids"].device
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    answers, count = [], 0
    with contextlib.nullcontext() if cuda else PeakRss() as rss:
        generate(module, batches[0], task, new_tokens, forced)
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for batch in batches:
            texts, n = generate(module, batch, task, new_tokens, forced)
            answers += texts
            count += n
        seconds = time.perf_counter() - start  # batch_decode has waited for the GPU
    peak = torch.cuda.max_memory_allocated(device) if cuda else rss.delta
    return Result(len(batches[0]["records"]), seconds, len(answers), count, peak, answers)


def check_generate_call(module: M2SEModule, batch: dict, task: str) -> str:
    """Whether the bench's call answers as ``M2SEModule.generate_answers`` does (task defaults, no forcing)."""
    mine, _ = generate(module, batch, task, TASKS[task].max_new_tokens, forced=False)
    theirs = module.generate_answers(batch, task)
    same = sum(a == b for a, b in zip(mine, theirs, strict=True))
    verdict = "same answers" if same == len(mine) else f"DIFFERENT answers ({len(mine) - same} differ)"
    return f"bench generate call vs M2SEModule.generate_answers on a batch of {len(mine)}: {verdict}"


# (header, width); text columns align left, numbers right.
COLUMNS = (
    ("model", -14),
    ("batch", 5),
    ("samples/s", 9),
    ("speed-up", 8),
    ("new tok/s", 9),
    ("peak mem", 10),
    ("same as batch 1", 15),
)


def table_line(cells) -> str:
    return " ".join(
        f"{cell:<{-w}}" if w < 0 else f"{cell:>{w}}" for cell, (_, w) in zip(cells, COLUMNS, strict=True)
    )


def differing(r: Result, reference: Result) -> list[int]:
    """Samples whose answer differs from the one-at-a-time answer."""
    return [i for i, (a, b) in enumerate(zip(r.answers, reference.answers, strict=True)) if a != b]


def row(name: str, r: Result, reference: Result) -> list[str]:
    rate = r.samples / r.seconds
    return [
        name,
        str(r.batch),
        f"{rate:.2f}",
        f"{rate / (reference.samples / reference.seconds):.2f}x",
        f"{r.new_tokens / r.seconds:.1f}",
        f"{r.peak_bytes / 2**30:.2f} GiB" if r.peak_bytes >= 2**30 else f"{r.peak_bytes / 2**20:.1f} MiB",
        f"{r.samples - len(differing(r, reference))}/{r.samples}",
    ]


def model_folder(name: str, tmp: Path, device: torch.device) -> Path:
    if name == "tiny":
        return build_tiny_internvl(tmp / "tiny")
    if name in INTERNVL2:
        return write_random_internvl2(name, tmp / name, device)
    cache = Path(os.environ.get("M2SE_CACHE", "~/.cache/m2se")).expanduser() / "converted"
    return resolve_model_path(name, cache)  # as conf/model/*.yaml: a folder or cached hub id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny, internvl2_2b, internvl2_4b or a path")
    parser.add_argument("--task", default="erc", choices=TEST_TASKS, help="whose demo test file to answer")
    parser.add_argument("--samples", type=int, default=32, help="test samples answered per batch size")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 16], help="1 always runs")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the task's")
    parser.add_argument("--until-eos", action="store_true", help="stop at EOS instead of forcing the count")
    parser.add_argument("--frames", type=int, default=8, help="frames read per video (one tile each)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if args.model in INTERNVL2 and not cuda:
        print("skipped: no CUDA device")
        return
    if args.samples < 1 or min(args.batch) < 1:
        parser.error("--samples and --batch must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    device = torch.device("cuda" if cuda else "cpu")
    task, forced = args.task, not args.until_eos
    new_tokens = args.max_new_tokens or TASKS[task].max_new_tokens
    sizes = sorted({1, *args.batch})
    where = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} torch threads)"
    print(f"generation on {where}; torch {torch.__version__}, transformers {transformers.__version__}")
    with tempfile.TemporaryDirectory(prefix="m2se-bench-") as tmp:
        root = write_demo_dataset(Path(tmp) / "demo", test_size=args.samples)
        folder = model_folder(args.model, Path(tmp), device)
        processor = internvl.from_pretrained(folder)
        records = load_records(root / "test" / f"{task}.json", root, task).records[: args.samples]
        media = MediaLoader(args.frames, processor.tile_size)
        dataset = EncodedDataset(records, processor, media, on_media_error="raise", generation=True)
        items = [dataset[i] for i in range(len(dataset))]
        collator = Collator(processor, padding_side="left")
        load = LoadSettings(extra={"device_map": "cuda"} if cuda else {})
        module = M2SEModule(
            InternVL(str(folder)), processor, load=load
        ).eval()  # eval: no LoRA dropout, as the test loop has

        lengths = [len(sample.input_ids) for _, sample in items]
        media_kind = f"{args.frames}-frame videos" if records[0].videos else "images"
        visual = items[0][1].num_visual_tokens
        dtype = str(load.torch_dtype()).removeprefix("torch.")
        print(
            f"model {args.model} ({dtype}, {load.attention()}), task {task}: {len(items)} samples of the "
            f"demo's test/{task}.json, {media_kind} at {processor.tile_size} px"
        )
        print(f"prompt tokens per sample: {min(lengths)}-{max(lengths)} ({visual} visual in the first)")
        how = "exactly, min_new_tokens = max_new_tokens: no early EOS" if forced else "at most, stops at EOS"
        print(f"new tokens per sample: {new_tokens} ({how})")
        print(check_generate_call(module, batches_of(items, max(sizes), collator, device)[0], task))

        results = []
        for size in sizes:
            results.append(run(module, batches_of(items, size, collator, device), task, new_tokens, forced))
            print(f"  batch {size}: {results[-1].seconds:.2f} s for {len(items)} samples", flush=True)
        del module
        gc.collect()
        padding = {size: pad_fractions(root, processor, media, size) for size in sizes if size > 1}

    reference = results[0]
    memory = "max allocated, weights included" if cuda else "RSS growth from before the untimed batch"
    print(f"\nspeed-up: samples/s against batch 1 (one at a time); peak mem: {memory}\n")
    header = table_line(name for name, _ in COLUMNS)
    print(header)
    print("-" * len(header))
    for result in results:
        print(table_line(row(Path(args.model).name, result, reference)))
    mismatches = 0
    for result in results[1:]:
        differ = differing(result, reference)
        mismatches += len(differ)
        for i in differ[:3]:
            print(
                f"batch {result.batch}, sample {i} ({records[i].where}): "
                f"{result.answers[i]!r} != one at a time {reference.answers[i]!r}"
            )
    print(
        f"\nbatched answers equal one-at-a-time answers: {mismatches} mismatches over "
        f"{len(results) - 1} batch sizes x {len(items)} samples"
    )
    print(f"\npad share of prompt tokens, all {len(TEST_TASKS)} demo test tasks, one task per batch:")
    for size, (plain, by_length) in padding.items():
        print(f"  batch {size}: record order {plain:.3f}, by prompt length {by_length:.3f}")


def pad_fractions(root: Path, processor, media: MediaLoader, size: int) -> tuple[float, float]:
    """Padding's share of the prompt tokens of the demo's test files (every task) in generation
    batches of ``size``: in record order, and grouped by prompt length as ``question_loader`` does."""
    records = [r for task in TEST_TASKS for r in load_records(root / "test" / f"{task}.json", root).records]
    lengths = token_lengths(records, processor, media, answers=False)

    def share(batches) -> float:
        slots = sum(len(b) * max(lengths[i] for i in b) for b in batches)
        return 1 - sum(lengths[i] for b in batches for i in b) / slots

    return share(grouped(records, None, size, None)), share(grouped(records, None, size, None, lengths))


if __name__ == "__main__":
    main()

"""What the benches report: peak resident memory, the GPU's peak FLOP/s, and the train-step table."""

from __future__ import annotations

import statistics
import threading
import warnings

import psutil  # a dependency of peft
import torch
from lightning.fabric.utilities.throughput import get_available_flops


class PeakRss:
    """Peak resident memory of this process above the level at entry, sampled every 5 ms."""

    def __init__(self) -> None:
        self._process, self._stop = psutil.Process(), threading.Event()
        self.baseline = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def delta(self) -> int:
        return self.peak - self.baseline


# Dense bf16 peaks (FLOP/s) of chips Lightning's table lacks; the H200 has the H100 SXM's tensor cores.
EXTRA_BF16_PEAKS = {"h200": 989.4e12}


def peak_bf16_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak in FLOP/s (Lightning's table, then ``EXTRA_BF16_PEAKS``), or None."""
    with warnings.catch_warnings():  # Lightning warns for chips it does not know; the table below may
        warnings.simplefilter("ignore")
        found = get_available_flops(device, torch.bfloat16)
    if found is not None:
        return float(found)
    name = torch.cuda.get_device_name(device).lower()
    return next((peak for chip, peak in EXTRA_BF16_PEAKS.items() if chip in name), None)


def si(n: float, units: str = "TGMK") -> str:
    """1234567 -> '1.23M'; params in B/M/K, FLOPs in T/G/M/K."""
    for unit in units:
        size = {"T": 1e12, "B": 1e9, "G": 1e9, "M": 1e6, "K": 1e3}[unit]
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def count(n: float) -> str:
    return si(n, "BMK")


# (header, width); text columns align left, numbers right.
COLUMNS = (
    ("model", -14),
    ("dtype", -8),
    ("attention", -17),
    ("ckpt", -4),
    ("batch", 5),
    ("tokens/sample", 15),
    ("step ms", 14),
    ("samples/s", 9),
    ("tokens/s", 9),
    ("peak mem", 9),
    ("trainable / total", 17),
    ("FLOP/step", 9),
    ("FLOP/s", 8),
    ("MFU", 6),
)


def table_line(cells) -> str:
    return " ".join(
        f"{cell:<{-w}}" if w < 0 else f"{cell:>{w}}" for cell, (_, w) in zip(cells, COLUMNS, strict=True)
    )


def row(r) -> list[str]:
    """One table row of a ``train_step.Result``."""
    spread = statistics.stdev(r.step_s) if len(r.step_s) > 1 else 0.0
    achieved = r.flops / r.mean_s
    return [
        r.model,
        r.dtype,
        r.attention,
        "on" if r.checkpointing else "off",
        str(r.batch),
        f"{r.tokens_per_sample:.0f} ({r.visual_per_sample:.0f} vis)",
        f"{r.mean_s * 1e3:.1f} ± {spread * 1e3:.1f}",
        f"{r.batch / r.mean_s:.1f}",
        f"{r.tokens / r.mean_s:.0f}",
        f"{r.peak_bytes / 2**30:.2f} GiB",
        f"{count(r.trainable)} / {count(r.total)}",
        si(r.flops),
        si(achieved),
        f"{achieved / r.peak_flops:.1%}" if r.peak_flops else "-",
    ]


def table(results) -> str:
    """The header, a rule and one row per ``train_step.Result``."""
    header = table_line(name for name, _ in COLUMNS)
    return "\n".join([header, "-" * len(header), *(table_line(row(r)) for r in results)])

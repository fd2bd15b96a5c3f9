"""The benches' report helpers: the GPU peak that MFU divides by, and the table."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import report  # noqa: E402  (bench/ is a folder of scripts, on sys.path when they run)


def test_chips_lightning_does_not_know_get_their_peak(monkeypatch):
    monkeypatch.setattr(report, "get_available_flops", lambda device, dtype: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert report.peak_bf16_flops(torch.device("cuda")) == 989.4e12  # the bench printed "-" as H200 MFU
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA Unknown 9000")
    assert report.peak_bf16_flops(torch.device("cuda")) is None
    monkeypatch.setattr(report, "get_available_flops", lambda device, dtype: 312e12)
    assert report.peak_bf16_flops(torch.device("cuda")) == 312e12


def test_numbers_read_as_the_table_prints_them():
    assert (
        report.si(1_234_567) == "1.23M" and report.si(2.5e12) == "2.50T" and report.count(4.16e9) == "4.16B"
    )

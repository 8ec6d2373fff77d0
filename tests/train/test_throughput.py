"""Throughput records and the batched train log."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from ldmscale.storage.fs import Storage
from ldmscale.train.throughput import Throughput, TrainLog, peak_tflops


def test_rates_follow_samples_and_time() -> None:
    meter = Throughput(gflops_forward=2.0, world_size=1, peak=None)
    meter.add(64)
    time.sleep(0.05)
    record = meter.lap()
    assert 0 < record["train/samples_per_s"] <= 64 / 0.05
    assert record["train/tflops"] == pytest.approx(3 * 2.0 * record["train/samples_per_s"] / 1e3)
    assert record["train/mfu"] is None
    assert peak_tflops(torch.device("cpu")) is None
    with_peak = Throughput(gflops_forward=1e6, world_size=2, peak=100.0)
    with_peak.add(10)
    lap = with_peak.lap()
    assert lap["train/mfu"] == pytest.approx(lap["train/tflops"] / 200.0)


@pytest.mark.slow
def test_train_log_writes_the_first_record_at_once_then_in_batches(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    log = TrainLog(storage, "models/m/train_log.jsonl", interval=3600)
    log.add({"step": 1})
    log.add({"step": 2})
    log.add({"step": 3})
    lines = storage.read_text("models/m/train_log.jsonl").splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1]
    log.flush()
    lines = storage.read_text("models/m/train_log.jsonl").splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]

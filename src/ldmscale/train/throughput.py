"""Training records: throughput (samples/s, achieved TFLOP/s, model FLOPs utilisation) and the
batched writer of `train_log.jsonl`.

Achieved FLOP/s = forwards x forward FLOPs x samples / seconds (forward + backward ~ 3 forwards;
an objective with a teacher counts its passes too: `Objective.forwards_per_sample`), with the
forward FLOPs counted by `ldmscale.models.cost`. MFU divides by the
card's dense bf16 peak, looked up by device name; it is None on a CPU or an unknown card.
"""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from ldmscale.storage.fs import Storage

# Dense bf16 peak of one card, TFLOP/s (vendor data sheets, without sparsity).
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "L4": 121.0,
}


def peak_tflops(device: torch.device) -> float | None:
    """The bf16 peak of the CUDA card behind `device`, or None on a CPU or an unknown card."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_BF16_TFLOPS.items():
        if key in name:
            return peak
    return None


class Throughput:
    """Measures the interval since the last `lap()`: samples/s, TFLOP/s and MFU of all ranks."""

    def __init__(
        self, gflops_forward: float, world_size: int, peak: float | None, forwards: float = 3.0
    ) -> None:
        self.gflops_forward = gflops_forward
        self.forwards = forwards
        """FLOPs per sample in forwards (forward + backward ~ 3)."""
        self.world_size = world_size
        self.peak = peak
        self._start = time.perf_counter()
        self._samples = 0

    def add(self, samples: int) -> None:
        """Count `samples` more (over all ranks)."""
        self._samples += samples

    def lap(self) -> dict[str, float | None]:
        """samples/s, TFLOP/s and MFU since the last lap; starts the next one."""
        now = time.perf_counter()
        seconds = max(now - self._start, 1e-9)
        rate = self._samples / seconds
        tflops = self.forwards * self.gflops_forward * rate / 1e3
        mfu = tflops / (self.peak * self.world_size) if self.peak else None
        self._start, self._samples = now, 0
        return {"train/samples_per_s": rate, "train/tflops": tflops, "train/mfu": mfu}


class TrainLog:
    """Appends records to `train_log.jsonl` in the study, batched: on an object store each append
    rewrites the object, so records are written at most every `interval` seconds (the first one
    at once, so progress shows early) and whenever `flush()` is called (at every checkpoint)."""

    def __init__(self, storage: Storage, rel: str, interval: float = 30.0) -> None:
        self.storage = storage
        self.rel = rel
        self.interval = interval
        self._pending: list[str] = []
        self._last: float | None = None

    def add(self, record: dict[str, Any]) -> None:
        """Queue a record; write the queue when the interval has passed (or for the first one)."""
        self._pending.append(json.dumps(record) + "\n")
        if self._last is None or time.monotonic() - self._last >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write every queued record."""
        if self._pending:
            self.storage.append_text(self.rel, "".join(self._pending))
            self._pending.clear()
        self._last = time.monotonic()

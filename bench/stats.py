"""Percentiles and process CPU/memory readings shared by the workloads."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

MIB = 1024 * 1024


def summary(samples_ms: Iterable[float]) -> dict[str, float | int]:
    """p50/p95/p99/max/mean of latencies in ms (nearest-rank percentiles).

    ``n`` and ``samples`` (the same number) say how many timings each percentile is of.
    """
    ms = sorted(samples_ms)
    if not ms:
        return {"n": 0, "samples": 0}

    def pct(p: float) -> float:
        return round(ms[max(0, math.ceil(p / 100 * len(ms)) - 1)], 2)

    return {
        "n": len(ms),
        "samples": len(ms),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": round(ms[-1], 2),
        "mean": round(statistics.fmean(ms), 2),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children, live and reaped (0 if it is gone)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    try:
        done = proc.cpu_times()
        total += done.children_user + done.children_system  # reaped (PostgreSQL backends)
    except psutil.Error:
        pass
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _own_cpu_seconds() -> float:
    """This process alone: the servers and workers it started are counted by name."""
    t = psutil.Process().cpu_times()
    return t.user + t.system


@dataclass
class CpuMeter:
    """CPU seconds each named process spent between ``start()`` and ``stop()``."""

    pids: dict[str, int]

    def start(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._start["driver"] = _own_cpu_seconds()
        self._load = os.getloadavg()[0]

    def stop(self) -> dict[str, object]:
        spent = {
            name: round(cpu_seconds(pid) - self._start[name], 2) for name, pid in self.pids.items()
        }
        spent["driver"] = round(_own_cpu_seconds() - self._start["driver"], 2)
        return {"cpu_s": spent, "load_1m": [round(self._load, 2), round(os.getloadavg()[0], 2)]}


class Failures:
    """Failed calls of one kind: how many, and a few distinct messages (a run goes on)."""

    def __init__(self) -> None:
        self.count = 0
        self.samples: list[str] = []

    def add(self, err: BaseException) -> None:
        self.count += 1
        text = f"{type(err).__name__}: {str(err)[:200]}"
        if text not in self.samples and len(self.samples) < 5:
            self.samples.append(text)

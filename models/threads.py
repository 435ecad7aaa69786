"""Size torch's CPU threads to the cores this process really has, so contention never collapses training.

torch's OpenMP threads spin-wait between parallel regions. With 2 threads on 2 cores and any other busy
process (an extraction worker, Dask, another job) a small MULDE trained 20-60× slower. Two defences:

* ``mulde_vad/__init__.py`` sets ``OMP_WAIT_POLICY=PASSIVE`` when it is imported before torch: threads
  then sleep instead of spinning and contention costs little (``bench/mulde_speed.py --contention``).
* When torch was loaded first (``import torch`` above ``from mulde_vad import MULDE``, the order isort
  gives), the wait policy is already fixed, so ``CoreBudget`` measures how many cores other processes
  keep busy and shrinks torch's intra-op threads to the cores left over, re-checking as training runs.
"""

from __future__ import annotations

import os
import time

import torch

import mulde_vad


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; cgroup quotas are not visible here)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _busy_seconds() -> tuple[float, float] | None:
    """(CPU seconds all processes spent busy, CPU seconds this process spent) since boot, from /proc."""
    try:
        with open("/proc/stat") as handle:
            fields = [float(v) for v in handle.readline().split()[1:]]
        with open("/proc/self/stat") as handle:
            own = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / ticks, (float(own[11]) + float(own[12])) / ticks


class CoreBudget:
    """Keeps ``torch.set_num_threads`` at the cores other processes leave free, while the wait policy spins.

    ``adapt()`` is cheap (two small /proc reads); call it every few hundred milliseconds of work. It uses the
    busy time other processes accumulated since the previous call, so it follows contention that starts or
    ends mid-run. ``restore()`` puts the caller's thread count back.
    """

    def __init__(self, device: torch.device) -> None:
        self.active = device.type == "cpu" and not mulde_vad.PASSIVE_WAIT
        self.original = torch.get_num_threads()
        self.cores = min(usable_cores(), self.original)
        self.last = (time.monotonic(), _busy_seconds()) if self.active else None

    def adapt(self) -> int:
        """Set and return the thread count for the next stretch of work."""
        if not self.active or self.last is None or self.last[1] is None:
            return torch.get_num_threads()
        now, busy = time.monotonic(), _busy_seconds()
        (then, before), self.last = self.last, (now, busy)
        if busy is None or now - then < 0.05:
            return torch.get_num_threads()
        others = ((busy[0] - before[0]) - (busy[1] - before[1])) / (now - then)  # cores others kept busy
        threads = max(1, min(self.cores, round(usable_cores() - others)))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        return threads

    def restore(self) -> None:
        if self.active and torch.get_num_threads() != self.original:
            torch.set_num_threads(self.original)

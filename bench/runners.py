"""Per-video extraction on threads vs a Dask LocalCluster: which task runner pays off on this machine?

    .venv/bin/python bench/runners.py                      # tiny demo (4 videos × 60 frames)
    .venv/bin/python bench/runners.py --train 6 --test 4 --frames 150 --workers 2

Each runner extracts the same synthetic demo through ``mulde-vad extract`` (a fresh interpreter, a fresh
store, the real weight-free preset) and the table prints the extract stage's wall time from the run's
summary, the whole command's wall time, and the load average seen before it started.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(kind: str, root: Path, args: argparse.Namespace) -> tuple[float, float, float]:
    demo = {"seed": 0, "n_train": args.train, "n_test": args.test, "n_frames": args.frames, "width": 160, "height": 120}
    sets = {
        "dataset.root": str(root / "data"),
        "dataset.demo": json.dumps(demo),
        "store": str(root / f"store-{kind}"),
        "output": str(root / "runs"),
        "runner.kind": kind,
        "runner.max_workers": str(args.workers),
    }
    command = [sys.executable, "-m", "mulde_vad.flows.cli", "extract", "demo"]
    for key, value in sets.items():
        command += ["--set", f"{key}={value}"]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{kind}: mulde-vad extract failed:\n{done.stderr[-3000:]}")
    extract = float(re.search(r"extract ([\d.]+)s", done.stdout).group(1))
    return extract, wall, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=2)
    parser.add_argument("--test", type=int, default=2)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {kind: run(kind, Path(tmp), args) for kind in ("thread", "dask")}
    videos = args.train + args.test
    print(f"\n{videos} videos × {args.frames} frames, {args.workers} workers, {os.cpu_count()} cores")
    print(f"{'runner':<8}{'extract (s)':>12}{'command (s)':>13}{'load avg':>10}")
    for kind, (extract, wall, load) in rows.items():
        print(f"{kind:<8}{extract:>12.1f}{wall:>13.1f}{load:>10.2f}")


if __name__ == "__main__":
    main()

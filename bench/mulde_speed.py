"""Training and scoring throughput of models.MULDE against an official-style reference, same run, same data.

    .venv/bin/python bench/mulde_speed.py                 # CPU (and GPU too when CUDA is present)
    .venv/bin/python bench/mulde_speed.py --hidden 1024 1024 --dim 64   # a quicker, smaller check
    .venv/bin/python bench/mulde_speed.py --contention    # steps/s idle vs beside a CPU burner (contention.py)

Training throughput covers the optimisation loop alone (``MULDE.training_seconds_``; the reference's
loop timed the same way), after a one-batch warm-up in the same process. Each measurement runs in a
fresh process so that peak memory (RSS on CPU, max allocated on CUDA) belongs to it alone.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import contention
import numpy as np
import torch
from reference_mulde import copy_weights, reference_network, reference_scale_scores, reference_train

from mulde_vad.models import MULDE


def _data(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (8, dim))
    return centres[rng.integers(0, 8, n)] + rng.standard_normal((n, dim))


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(args: argparse.Namespace, device: str, epochs: int, precision: str = "float32") -> MULDE:
    return MULDE(
        hidden_units=tuple(args.hidden),
        batch_size=args.batch_size,
        epochs=epochs,
        gmm_components=1,
        device=device,
        precision=precision,
        scoring_batch_size=args.scoring_batch_size,
        random_state=0,
    )


def _train_ours(args: argparse.Namespace, device: str, precision: str) -> dict:
    X = _data(args.train_batches * args.batch_size, args.dim, 0)
    dev = torch.device(device)
    _model(args, device, 1, precision).fit(X[: args.batch_size])  # warm-up: allocator, kernels, threads
    model = _model(args, device, args.epochs, precision).fit(X)
    return {"samples_per_s": args.epochs * len(X) / model.training_seconds_, "peak_mb": _peak_mb(dev)}


def _train_reference(args: argparse.Namespace, device: str) -> dict:
    X = _data(args.train_batches * args.batch_size, args.dim, 0)
    dev = torch.device(device)
    torch.manual_seed(0)
    np.random.seed(0)
    timings = []
    for n, epochs in ((args.batch_size, 1), (len(X), args.epochs)):  # warm-up, then the timed run
        network = reference_network(args.dim, tuple(args.hidden)).to(dev)
        _sync(dev)
        start = time.perf_counter()
        reference_train(
            network,
            X[:n],
            epochs=epochs,
            batch_size=args.batch_size,
            sigma_low=1e-3,
            sigma_high=1.0,
            beta=0.1,
            learning_rate=4e-5,
            device=dev,
        )
        _sync(dev)
        timings.append(time.perf_counter() - start)
    return {"samples_per_s": args.epochs * len(X) / timings[-1], "peak_mb": _peak_mb(dev)}


def _score(args: argparse.Namespace, device: str, which: str) -> dict:
    """Score the same test set with the same weights: ours (fp32 or bf16) or the reference loop."""
    dev = torch.device(device)
    X_train, X_test = _data(2048, args.dim, 0), _data(args.n_score, args.dim, 1)
    model = _model(args, device, epochs=1).fit(X_train)  # trained weights; only scoring is timed
    reference_fp32 = model.scale_scores(X_test)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    start = time.perf_counter()
    if which == "reference":
        network = reference_network(args.dim, tuple(args.hidden)).to(dev)
        copy_weights(model.network_, network)
        z = reference_scale_scores(
            network,
            X_test,
            mean=model.mean_,
            scale=model.scale_,
            sigmas=model.scales_,
            batch_size=args.batch_size,
            device=dev,
        )
    else:
        model.set_params(precision="bfloat16" if which == "ours-bf16" else "float32")
        z = model.scale_scores(X_test)
    _sync(dev)
    seconds = time.perf_counter() - start
    scale = np.abs(reference_fp32).max()
    return {
        "samples_per_s": len(X_test) / seconds,
        "peak_mb": _peak_mb(dev),
        "max_rel_diff": float(np.abs(z - reference_fp32).max() / scale),
    }


def _isolated(fn, *args) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, nargs="+", default=[4096, 4096])
    parser.add_argument("--dim", type=int, default=512, help="feature dimension (CLIP ViT-B/16: 512)")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--train-batches", type=int, default=2, help="training set = this many batches")
    parser.add_argument("--epochs", type=int, default=1, help="timed training epochs")
    parser.add_argument("--n-score", type=int, default=1024, help="samples scored at 16 levels")
    parser.add_argument("--scoring-batch-size", type=int, default=1024)
    parser.add_argument(
        "--devices",
        nargs="+",
        choices=["cpu", "cuda"],
        default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"],
    )
    parser.add_argument("--contention", action="store_true", help="run bench/contention.py (its options follow)")
    args, rest = parser.parse_known_args()
    if args.contention:
        contention.main(rest)
        return
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")

    devices = args.devices
    gpu = f", GPU {torch.cuda.get_device_name()}" if "cuda" in devices else ""
    print(
        f"MULDE speed: d={args.dim}, hidden={args.hidden}, batch={args.batch_size}, L=16, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads{gpu}"
    )
    rows = []
    for device in devices:
        ref_train = _isolated(_train_reference, args, device)
        rows.append((device, "train", "reference (official style)", ref_train, 1.0))
        for precision in ["float32"] + (["bfloat16"] if device == "cuda" else []):
            ours = _isolated(_train_ours, args, device, precision)
            ratio = ours["samples_per_s"] / ref_train["samples_per_s"]
            rows.append((device, "train", f"MULDE {precision}", ours, ratio))
        ref_score = _isolated(_score, args, device, "reference")
        rows.append((device, "score", "reference (official style)", ref_score, 1.0))
        for which in ["ours-fp32"] + (["ours-bf16"] if device == "cuda" else []):
            result = _isolated(_score, args, device, which)
            label = {"ours-fp32": "MULDE float32", "ours-bf16": "MULDE bfloat16"}[which]
            rows.append((device, "score", label, result, result["samples_per_s"] / ref_score["samples_per_s"]))

    print("\n| device | stage | implementation | samples/s | × reference | peak MB | max rel. diff vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for device, stage, name, result, ratio in rows:
        diff = f"{result['max_rel_diff']:.1e}" if "max_rel_diff" in result else "–"
        rate, peak = result["samples_per_s"], result["peak_mb"]
        print(f"| {device} | {stage} | {name} | {rate:.1f} | {ratio:.2f} | {peak:.0f} | {diff} |")


if __name__ == "__main__":
    main()

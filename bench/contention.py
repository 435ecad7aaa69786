"""Training steps/s idle and beside a CPU-burning process: does MULDE keep its speed under contention?

    .venv/bin/python bench/mulde_speed.py --contention      # or: .venv/bin/python bench/contention.py

Each measurement runs in a fresh interpreter (the OpenMP wait policy is fixed when torch loads), once on
an idle machine and once while one extra process spins on a core. Rows:

* MULDE with ``import mulde_vad`` before torch: OpenMP threads wait passively;
* MULDE with ``import torch`` first (what isort produces): the wait policy is torch's default, and
  ``models.threads.CoreBudget`` shrinks the threads to the cores other processes leave free;
* the same network and loss in a plain PyTorch loop with torch's defaults: the speed MULDE had before.

"Idle" is only as idle as the machine is: the table prints the load average seen at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = """
import json, time
{imports}
import numpy as np
X = np.random.default_rng(0).normal(size=({n}, {dim}))
if {plain}:
    from mulde_vad.models.network import NoiseConditionedMLP
    from mulde_vad.models.noise import sample_training_sigmas
    torch.manual_seed(0)
    net = NoiseConditionedMLP({dim}, ({width}, {width}))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.9))
    x_all = torch.as_tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for step in range({steps}):
        x = x_all[torch.randint(0, len(x_all), ({batch},), generator=gen)]
        sigma = sample_training_sigmas(len(x), 1e-3, 1.0, gen, x.device)
        eps = torch.randn(x.shape, generator=gen)
        noisy = (x + sigma * eps).requires_grad_(True)
        (grad,) = torch.autograd.grad(net(noisy, sigma).sum(), noisy, create_graph=True)
        loss = 0.5 * ((sigma * grad - eps) ** 2).sum(1).mean() + 0.05 * (net(x, sigma) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds, steps = time.perf_counter() - started, {steps}
else:
    from mulde_vad import MULDE
    model = MULDE(hidden_units=({width}, {width}), batch_size={batch}, max_steps={steps}, gmm_components=1,
                  device="cpu").fit(X)
    seconds, steps = model.training_seconds_, model.n_steps_
print(json.dumps({{"steps_per_s": steps / seconds}}))
"""

CONFIGS = {
    "MULDE, mulde_vad imported first (passive OpenMP wait)": ("import mulde_vad\nimport torch", False),
    "MULDE, torch imported first (CoreBudget sizes threads)": ("import torch\nimport mulde_vad", False),
    "plain PyTorch loop, torch defaults (MULDE before)": ("import torch", True),
}


def measure(imports: str, plain: bool, args: argparse.Namespace) -> dict:
    code = CHILD.format(
        imports=imports, plain=plain, n=args.n, dim=args.dim, width=args.width, batch=args.batch, steps=args.steps
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> None:
    print(
        f"Contention: MULDE {args.width}×{args.width}, d={args.dim}, batch {args.batch}, {args.steps} steps, "
        f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.2f}\n"
    )
    print("| configuration | idle steps/s | with a CPU burner steps/s | contended / idle |")
    print("|---|---|---|---|")
    for label, (imports, plain) in CONFIGS.items():
        idle = measure(imports, plain, args)
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            busy = measure(imports, plain, args)
        finally:
            burner.kill()
            burner.wait()
        ratio = busy["steps_per_s"] / idle["steps_per_s"]
        print(f"| {label} | {idle['steps_per_s']:.1f} | {busy['steps_per_s']:.1f} | {ratio:.2f} |")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--width", type=int, default=256, help="hidden units per layer (2 layers)")
    parser.add_argument("--dim", type=int, default=34, help="feature dimension (34 = pose keypoints)")
    parser.add_argument("--n", type=int, default=8192, help="training rows")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=400)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()

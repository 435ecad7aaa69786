"""mulde-vad: video anomaly detection with MULDE, orchestrated with Prefect.

Installed, the repository's top-level folders are this package's subpackages (``mulde_vad.models``,
``mulde_vad.flows``, ...; see ``[tool.setuptools] package-dir`` in pyproject.toml). The public names
below load lazily, so ``mulde_vad.__version__`` and the CLI's ``--version`` do not import torch.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if "torch" not in sys.modules:
    # torch's OpenMP threads spin-wait between parallel regions. Whenever another process uses the cores
    # (an extraction worker, Dask, a Prefect worker, another job) that made MULDE training up to 60×
    # slower; passive waiting keeps it near the idle speed (bench/mulde_speed.py --contention). Every
    # mulde_vad import passes here first, so the library, the CLI, flows and workers all get it. When
    # torch was imported first, models.threads.CoreBudget sizes the threads instead.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
#: True when torch's OpenMP threads sleep instead of spinning (so contention needs no thread sizing).
PASSIVE_WAIT = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"

__version__ = "0.2.0"

if TYPE_CHECKING:
    from mulde_vad.models.mulde import MULDE

__all__ = ["MULDE", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "MULDE":
        from mulde_vad.models.mulde import MULDE

        return MULDE
    raise AttributeError(f"module 'mulde_vad' has no attribute {name!r}")

"""mulde-vad: video anomaly detection with MULDE, orchestrated with Prefect.

Installed, the repository's top-level folders are this package's subpackages (``mulde_vad.models``,
``mulde_vad.flows``, ...; see ``[tool.setuptools] package-dir`` in pyproject.toml). The public names
below load lazily, so ``mulde_vad.__version__`` and the CLI's ``--version`` do not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from mulde_vad.models.mulde import MULDE

__all__ = ["MULDE", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "MULDE":
        from mulde_vad.models.mulde import MULDE

        return MULDE
    raise AttributeError(f"module 'mulde_vad' has no attribute {name!r}")

"""Adapters by name: ``get_adapter("ped2", root).videos("test")``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mulde_vad.datasets.avenue import Avenue
from mulde_vad.datasets.base import DatasetAdapter
from mulde_vad.datasets.folder import FolderDataset
from mulde_vad.datasets.shanghaitech import ShanghaiTech
from mulde_vad.datasets.ubnormal import UBnormal
from mulde_vad.datasets.ucf_crime import UCFCrime
from mulde_vad.datasets.ucsd import UCSDPed

ADAPTERS: dict[str, Callable[[Path], DatasetAdapter]] = {
    "ped2": lambda root: UCSDPed(root, "ped2"),
    "ped1": lambda root: UCSDPed(root, "ped1"),
    "avenue": Avenue,
    "shanghaitech": ShanghaiTech,
    "ubnormal": UBnormal,
    "ucf_crime": UCFCrime,
    "folder": FolderDataset,
}


def get_adapter(name: str, root: str | Path) -> DatasetAdapter:
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(ADAPTERS)}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist; pass the folder that holds the {name} copy")
    return ADAPTERS[name](root)

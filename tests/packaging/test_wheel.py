"""The distribution: sdist and wheel build offline, the wheel's only top-level package is ``mulde_vad``, and
installed it imports beside a top-level ``datasets`` package (Hugging Face's) without shadowing either."""

from __future__ import annotations

import email
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import mulde_vad

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("configs", "datasets", "features", "features/extractors", "flows", "models", "storage", "tasks")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build`` without isolation (offline): the sdist, and the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_wheel_holds_one_top_level_package_with_its_configs(dist: dict[str, Path]) -> None:
    version = mulde_vad.__version__
    assert dist["wheel"].name == f"mulde_vad-{version}-py3-none-any.whl"
    names = zipfile.ZipFile(dist["wheel"]).namelist()
    assert {name.split("/")[0] for name in names} == {"mulde_vad", f"mulde_vad-{version}.dist-info"}
    for package in SUBPACKAGES:
        assert f"mulde_vad/{package}/__init__.py" in names or package == "configs", package
    shipped = {name.rpartition("/")[2] for name in names if name.startswith("mulde_vad/configs/")}
    assert shipped == {path.name for path in (ROOT / "configs").glob("*.yaml")}
    assert {"mulde_vad/__init__.py", "mulde_vad/prefect.yaml", "mulde_vad/py.typed"} <= set(names)
    assert not any(name.startswith(("mulde_vad/tests/", "mulde_vad/bench/", "mulde_vad/docs/")) for name in names)


def test_wheel_metadata_is_complete_for_a_package_index(dist: dict[str, Path]) -> None:
    wheel = zipfile.ZipFile(dist["wheel"])
    info = f"mulde_vad-{mulde_vad.__version__}.dist-info"
    meta = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
    assert meta["Name"] == "mulde-vad" and meta["Version"] == mulde_vad.__version__
    assert meta["License-Expression"] == "MIT" and f"{info}/licenses/LICENSE" in wheel.namelist()
    assert meta["Requires-Python"] and meta["Keywords"] and meta["Description-Content-Type"] == "text/markdown"
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers and "Typing :: Typed" in classifiers
    assert "mulde-vad = mulde_vad.flows.cli:main" in wheel.read(f"{info}/entry_points.txt").decode()
    assert wheel.read(f"{info}/top_level.txt").decode().split() == ["mulde_vad"]


def test_sdist_carries_sources_docs_and_licence(dist: dict[str, Path]) -> None:
    prefix = f"mulde_vad-{mulde_vad.__version__}/"
    with tarfile.open(dist["sdist"]) as sdist:
        names = {name.removeprefix(prefix) for name in sdist.getnames()}
    assert {"pyproject.toml", "README.md", "LICENSE", "__init__.py", "flows/cli.py", "configs/ped2.yaml"} <= names
    assert {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")} <= names


def test_installed_wheel_imports_beside_a_top_level_datasets_package(dist: dict[str, Path], tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(dist["wheel"]).extractall(site)  # what pip installs: the wheel's files, unchanged
    stub = tmp_path / "stub" / "datasets"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('OWNER = "huggingface"\n')
    script = f"""
import sys
sys.path[:0] = [{str(site)!r}, {str(stub.parent)!r}]
from mulde_vad.flows.cli import main
try:
    main(["--version"])
except SystemExit as exit:
    assert exit.code == 0
assert "torch" not in sys.modules, "--version must not import torch"
import datasets
import mulde_vad, mulde_vad.datasets
from mulde_vad.flows.config import load_config
assert mulde_vad.__file__.startswith({str(site)!r}), mulde_vad.__file__
assert mulde_vad.datasets.__file__.startswith({str(site)!r}), mulde_vad.datasets.__file__
assert datasets.OWNER == "huggingface" and mulde_vad.datasets is not datasets
assert load_config("ped2").dataset.name == "ped2"  # configs ship as package data
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"mulde-vad {mulde_vad.__version__}"

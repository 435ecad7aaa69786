"""Typed run configuration: one YAML file per dataset (``configs/``) validated before any work starts.

The models are pydantic, so a bad file fails at load time with the dotted path of the offending field,
and the Prefect UI renders the flow parameters as a form. Defaults are the paper's (method.md §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: A run name becomes the folder ``output/<name>/``: one path component, nothing that climbs out of it.
PLAIN_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
#: "auto", "cpu", "mps", "cuda" or "cuda:N"; whether CUDA is present is checked before a run starts.
DEVICE = r"^(auto|cpu|mps|cuda(:\d+)?)$"
DatasetName = Literal["ped2", "ped1", "avenue", "shanghaitech", "ubnormal", "ucf_crime", "folder", "demo"]
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A configuration file is missing or invalid; the message names the file and every bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoSettings(_Strict):
    """Size of the synthetic demo dataset (``datasets.demo.DemoSpec``)."""

    seed: int = 0
    n_train: int = Field(6, ge=1)
    n_test: int = Field(4, ge=2)
    n_frames: int = Field(150, ge=20)
    width: int = Field(160, ge=64)
    height: int = Field(120, ge=48)


class DatasetSettings(_Strict):
    name: DatasetName
    root: Path
    demo: DemoSettings | None = Field(None, description="only for name=demo: generate the data into root first")

    @model_validator(mode="after")
    def _demo_only_for_demo(self) -> DatasetSettings:
        if self.demo is not None and self.name != "demo":
            raise ValueError("demo settings are only allowed with name: demo")
        return self


class ExtractionSettings(_Strict):
    """Which ``features.config`` preset to extract with, plus field overrides (e.g. weight paths)."""

    preset: str = "weightfree"
    overrides: dict[str, Any] = Field(default_factory=dict)


class MuldeSettings(_Strict):
    """``models.MULDE`` parameters (paper defaults)."""

    hidden_units: tuple[int, ...] = (4096, 4096)
    sigma_low: float = Field(1e-3, gt=0)
    sigma_high: float = Field(1.0, gt=0)
    n_scales: int = Field(16, ge=1)
    scale_spacing: Literal["linear", "log"] = "linear"
    beta: float | None = Field(0.1, ge=0)
    learning_rate: float = Field(4e-5, gt=0)
    lr_schedule: Literal["constant", "step", "cosine"] = "constant"
    batch_size: int = Field(2048, ge=1)
    epochs: int = Field(1000, ge=1)
    gmm_components: int = Field(5, ge=1)
    device: str = Field("auto", pattern=DEVICE)
    random_state: int | None = 0

    @field_validator("hidden_units")
    @classmethod
    def _positive_units(cls, units: tuple[int, ...]) -> tuple[int, ...]:
        if not units or min(units) < 1:
            raise ValueError("hidden_units must be a non-empty list of positive layer widths")
        return units

    @model_validator(mode="after")
    def _ordered_sigmas(self) -> MuldeSettings:
        if self.sigma_low >= self.sigma_high:
            raise ValueError(f"sigma_low ({self.sigma_low}) must be below sigma_high ({self.sigma_high})")
        return self


class EvaluationSettings(_Strict):
    """Frame scores: AI-VAD calibration per feature type, sum, per-video Gaussian smoothing (method.md §3.3, §5)."""

    feature_types: list[str] | None = Field(None, description="feature types to fuse; null = all in the shards")
    calibration_upper: dict[str, float | Literal["max"]] = Field(
        default_factory=dict, description="per feature type: percentile or 'max' (default 99.9)"
    )
    smoothing_sigma: float = Field(3.0, ge=0)
    plots: bool = True


class RunnerSettings(_Strict):
    """Where per-video tasks run: threads in the flow process, or Dask (a LocalCluster or an existing scheduler)."""

    kind: Literal["thread", "dask"] = "thread"
    max_workers: int = Field(2, ge=1)
    address: str | None = Field(None, description="tcp://host:8786 of an existing Dask scheduler")
    dashboard: str = Field(
        "127.0.0.1:8787", description="host:port of a LocalCluster's dashboard; loopback only unless changed"
    )

    @model_validator(mode="after")
    def _address_needs_dask(self) -> RunnerSettings:
        if self.address is not None and self.kind != "dask":
            raise ValueError("address is only used with kind: dask")
        return self


class PipelineConfig(_Strict):
    """Everything one end-to-end run needs."""

    name: str = Field(pattern=PLAIN_NAME, description="run name: a plain folder name under output/")
    dataset: DatasetSettings
    store: Path = Field(Path("store"), description="feature store root (shared by all workers)")
    output: Path = Field(Path("runs"), description="per-frame scores, plots and reports go to output/<name>/")
    extraction: ExtractionSettings = ExtractionSettings()
    mulde: MuldeSettings = MuldeSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    runner: RunnerSettings = RunnerSettings()


def _format(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in error.errors())


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A file path, or a bare name of a file in ``configs/`` (``demo`` → ``configs/demo.yaml``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"{name_or_path}: no such config file (or a name in {CONFIG_DIR}: {', '.join(names)})")


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_dotted(raw, "mulde.epochs", 5)`` sets ``raw["mulde"]["epochs"] = 5``, creating sections."""
    *sections, leaf = dotted.split(".")
    node = raw
    for section in sections:
        child = node.setdefault(section, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {section} is a value, not a section")
        node = child
    node[leaf] = value


def load_config(name_or_path: str | Path, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """Read and validate a YAML config; ``overrides`` set dotted fields first (``{"mulde.epochs": 5}``).

    Relative paths in the file are taken relative to the current directory, like the CLI's arguments.
    """
    path = resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid config: {_format(exc)}") from exc

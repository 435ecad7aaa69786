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

from mulde_vad.models.calibration import CALIBRATION_HOLDOUT, CALIBRATION_TAIL, Tail

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
    """``mulde_vad.MULDE`` parameters. ``recipe`` picks the starting point: "default" (the estimator's own
    defaults: a fixed step budget with warm-up + cosine, σ_high from the data, robust fusion of the
    scale scores) or "paper" (the paper's exact recipe: 2 × 4096, constant 4e-5, batch 2048, 1000 epochs,
    σ_high = 1, GMM on raw scale scores); every field set here overrides the recipe."""

    recipe: Literal["default", "paper"] = "default"
    hidden_units: tuple[int, ...] | None = None
    sigma_low: float = Field(1e-3, gt=0)
    sigma_high: float | Literal["auto"] | None = Field(None, description='a number, or "auto": set from the data')
    n_scales: int = Field(16, ge=1)
    scale_spacing: Literal["linear", "log"] = "linear"
    beta: float | None = Field(0.1, ge=0)
    learning_rate: float | None = Field(None, gt=0)
    lr_schedule: Literal["warmup_cosine", "cosine", "constant", "step"] | None = None
    warmup: float | None = Field(None, ge=0, lt=1)
    batch_size: int | None = Field(None, ge=1)
    max_steps: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    max_time: float | None = Field(None, gt=0, description="seconds; training stops there whatever the budget")
    ema_decay: float | None = Field(None, gt=0, lt=1)
    fusion: Literal["robust", "gmm", "max", "mean"] | None = None
    gmm_components: int | None = Field(None, ge=1)
    fusion_holdout: float | None = Field(
        CALIBRATION_HOLDOUT, ge=0, lt=1, description="training rows the network leaves to the calibration"
    )
    device: str = Field("auto", pattern=DEVICE)
    random_state: int | None = 0

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments for ``MULDE``: the recipe's values, then every field given in the config."""
        from mulde_vad.models.mulde import PAPER_RECIPE  # torch is imported only when a model is configured

        params = dict(PAPER_RECIPE) if self.recipe == "paper" else {}
        for name, value in self.model_dump(exclude={"recipe"}).items():
            if name in self.model_fields_set or (name not in params and value is not None):
                params[name] = value
        return params

    @field_validator("hidden_units")
    @classmethod
    def _positive_units(cls, units: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if units is not None and (not units or min(units) < 1):
            raise ValueError("hidden_units must be a non-empty list of positive layer widths")
        return units

    @model_validator(mode="after")
    def _ordered_sigmas(self) -> MuldeSettings:
        if isinstance(self.sigma_high, float | int) and not self.sigma_low < self.sigma_high:
            raise ValueError(f"sigma_low ({self.sigma_low}) must be below sigma_high ({self.sigma_high})")
        return self


class EvaluationSettings(_Strict):
    """Frame scores: AI-VAD calibration per feature type, sum, per-video Gaussian smoothing (method.md §3.3, §5)."""

    feature_types: list[str] | None = Field(None, description="feature types to fuse; null = all in the shards")
    calibration_upper: dict[str, float | Literal["max"]] = Field(
        default_factory=dict, description="per feature type: percentile or 'max' (default 99.9)"
    )
    calibration_tail: Tail = Field(
        CALIBRATION_TAIL, description="calibrated scores above the upper statistic grow linearly (AI-VAD) or as a log"
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
    timeout_s: float | None = Field(
        None, gt=0, description="seconds a per-video extraction or scoring task may run before it fails; null: no limit"
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
    output: Path = Field(
        Path("runs"), description="one folder per run: output/<name>/<UTC time>/, output/<name>/latest the last one"
    )
    extraction: ExtractionSettings = ExtractionSettings()
    mulde: MuldeSettings = MuldeSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    runner: RunnerSettings = RunnerSettings()


def _format(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in error.errors())


def shipped_configs() -> list[str]:
    """The names of the configs in ``configs/``, usable wherever a config is asked for."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A file path, or a bare name of a file in ``configs/`` (``demo`` → ``configs/demo.yaml``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    raise ConfigError(
        f"{name_or_path}: no such config file (or a name in {CONFIG_DIR}: {', '.join(shipped_configs())})"
    )


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

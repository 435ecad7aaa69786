"""A bundle: everything ``predict`` needs to score new footage, in one directory written atomically.

BUNDLE/bundle.json          format version, preset, extraction config, per-type calibration, fusion,
                            smoothing, threshold, MULDE params, provenance (versions, weight hashes,
                            training-video fingerprints)
BUNDLE/models/<type>.mulde  one fitted MULDE per feature type (``MULDE.save``)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.weights_table import weight_files
from mulde_vad.models.calibration import Calibration
from mulde_vad.models.mulde import MULDE
from mulde_vad.storage.provenance import canonical_json, config_hash, file_digest

FORMAT_VERSION = 2  # 2: each calibration names its tail; 1 (read too) calibrated linearly
READABLE_VERSIONS = (1, 2)
MANIFEST = "bundle.json"


class BundleError(ValueError):
    """A bundle is missing, damaged, of another format or preset; the message names the path and the fix."""


@dataclass(frozen=True)
class Threshold:
    """The frame-score threshold on smoothed fused scores, and how it was chosen (no labels involved).

    method "held_out_videos": the ``percentile`` of the smoothed fused frame scores that models fitted
    without a video give that video, over ``folds`` video folds (leave-one-video-out when there are at most
    ``folds`` videos); "in_sample": the same on the training videos themselves (one training video only).
    """

    value: float
    method: str
    percentile: float
    folds: int
    n_frames: int
    summary: dict[str, float] = field(default_factory=dict)  # max / p50 / p99 of the scores it came from


@dataclass
class FeatureModel:
    model: MULDE
    calibration: Calibration
    upper: float | str
    n_train: int


@dataclass
class Bundle:
    preset: str
    extraction: dict[str, Any]  # ExtractionConfig.to_dict() (runtime fields left out)
    features: dict[str, FeatureModel]
    threshold: Threshold
    smoothing_sigma: float
    empty_fill: float = 0.0
    mulde_params: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identifies what the bundle computes: config, models' calibration and threshold (not provenance)."""
        return config_hash(
            {
                "extraction": self.extraction,
                "calibration": {n: asdict(f.calibration) for n, f in self.features.items()},
                "threshold": self.threshold.value,
                "sigma": self.smoothing_sigma,
                "created": self.provenance.get("created"),
            }
        )

    def extraction_config(self, **runtime: Any) -> ExtractionConfig:
        """The stored extraction config, with runtime fields (device, batch_size) set by the caller."""
        try:
            return ExtractionConfig.stored(self.preset, self.extraction, **runtime)
        except (TypeError, ValueError) as error:
            raise BundleError(
                f"the bundle's extraction config does not fit this mulde-vad ({error}); refit it with `mulde-vad fit`"
            ) from error

    def manifest(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "preset": self.preset,
            "extraction": self.extraction,
            "feature_types": {
                name: {
                    "model": f"models/{name}.mulde",
                    "n_features": int(f.model.n_features_in_),
                    "n_train": f.n_train,
                    "calibration": {**asdict(f.calibration), "upper": f.upper},
                }
                for name, f in self.features.items()
            },
            "fusion": {"method": "sum of calibrated per-type frame scores", "empty_fill": self.empty_fill},
            "smoothing": {"sigma": self.smoothing_sigma},
            "threshold": asdict(self.threshold),
            "mulde": self.mulde_params,
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        """Write the bundle to ``path`` atomically: built in a sibling temporary folder, then renamed."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            for name, feature in self.features.items():
                feature.model.save(work / "models" / f"{name}.mulde")
            (work / MANIFEST).write_text(json.dumps(self.manifest(), indent=2, default=_jsonable) + "\n")
            if path.exists():
                if not (path / MANIFEST).is_file():
                    raise BundleError(f"{path} exists and is not a bundle; choose another --out")
                old = path.with_name(f".{path.name}.old.{os.getpid()}")
                os.replace(path, old)
                os.replace(work, path)
                shutil.rmtree(old)
            else:
                os.replace(work, path)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return path


def _jsonable(value: Any) -> Any:
    return json.loads(canonical_json({"v": value}))["v"]


def weight_hashes(config: ExtractionConfig) -> dict[str, dict[str, str]]:
    """SHA-256 of every weights file the config loads (resolved as extraction resolves them)."""
    files = weight_files(config)
    return {name: {"file": str(path.resolve()), "sha256": file_digest(path)} for name, path in files.items()}


def check_weights(bundle: Bundle, config: ExtractionConfig) -> None:
    """The weights files predict will load must be the ones the bundle was fitted with."""
    recorded = bundle.provenance.get("weights", {})
    for name, path in weight_files(config).items():
        info = recorded.get(name)
        if info is not None and file_digest(path) != info["sha256"]:
            raise BundleError(
                f"{name} {path} is not the file this bundle was fitted with (sha256 {info['sha256'][:12]}…); "
                "put the original weights there or refit the bundle"
            )


def load_bundle(path: str | Path, *, preset: str | None = None, device: str = "auto") -> Bundle:
    """Read a bundle; raise BundleError naming the path when it is missing, damaged, of another format
    version, or (when ``preset`` is given) fitted with another extraction preset."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        what = "does not exist" if not path.exists() else f"holds no {MANIFEST}"
        raise BundleError(
            f"{path} {what}: it is not a mulde-vad bundle; create one with `mulde-vad fit SOURCE --out {path}`"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise BundleError(f"{manifest_path} is damaged ({error}); refit the bundle with `mulde-vad fit`") from error
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version not in READABLE_VERSIONS:
        raise BundleError(
            f"{path} is a bundle of format version {version}, this mulde-vad reads versions {READABLE_VERSIONS}: "
            "refit it with `mulde-vad fit`"
        )
    if preset is not None and manifest["preset"] != preset:
        raise BundleError(
            f"{path} was fitted with extraction preset {manifest['preset']!r}, not {preset!r}: "
            f"predict with --preset {manifest['preset']} or fit a bundle with --preset {preset}"
        )
    features = {}
    for name, entry in manifest["feature_types"].items():
        try:
            model = MULDE.load(path / entry["model"], n_features=entry["n_features"], device=device)
        except (FileNotFoundError, ValueError) as error:
            raise BundleError(f"{path}: feature type {name!r}: {error}") from error
        saved = entry["calibration"]
        calibration = Calibration(saved["low"], saved["high"], saved.get("tail", "linear"))
        features[name] = FeatureModel(model, calibration, saved["upper"], entry["n_train"])
    return Bundle(
        preset=manifest["preset"],
        extraction=manifest["extraction"],
        features=features,
        threshold=Threshold(**manifest["threshold"]),
        smoothing_sigma=manifest["smoothing"]["sigma"],
        empty_fill=manifest["fusion"]["empty_fill"],
        mulde_params=manifest.get("mulde", {}),
        provenance=manifest.get("provenance", {}),
    )

"""Export a bundle's scoring to TorchScript or ONNX: runs with torch (or onnxruntime) alone, without mulde-vad.

Per feature type one module maps raw feature rows (n, d) float32 to (n, 2) float64: the GMM negative
log-likelihood of the L-scale MULDE scores (``MULDE.anomaly_score``) and its calibrated value. The
standardiser, the noise levels, the GMM and the calibration are buffers of plain arrays inside the
module, and are also written to ``arrays.npz``; ``scoring.json`` says how to go from object scores to
the fused, smoothed frame score and the threshold.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from mulde_vad.inference.bundle import Bundle
from mulde_vad.models.calibration import Calibration
from mulde_vad.models.mulde import MULDE

ExportFormat = Literal["torchscript", "onnx"]
GMM_FIELDS = ("gmm_weights", "gmm_means", "gmm_precisions_cholesky")
SUFFIX = {"torchscript": ".pt", "onnx": ".onnx"}


@dataclass(frozen=True)
class MuldeArrays:
    """What a fitted MULDE scores with. The one place that reads MULDE's fitted attributes for export.

    The fusion is normalised to one form: u = ((z − z_mean) / z_std) @ projection, then either a
    full-covariance GMM's negative log-likelihood on u ("gmm": the paper's fusion has z_mean 0, z_std 1,
    projection I; "robust" its standardiser and whitened principal directions) or the max / mean of u.
    """

    mean: np.ndarray  # (d,) feature standardiser
    scale: np.ndarray  # (d,)
    sigmas: np.ndarray  # (L,) test noise levels
    network: nn.Module  # NoiseConditionedMLP: input_layer on [x, σ], then body
    log_density: bool  # False: the MSMA score network, scored by ‖s(x, σ)‖²
    reduce: str  # "gmm" | "max" | "mean"
    z_mean: np.ndarray  # (L,)
    z_std: np.ndarray  # (L,)
    projection: np.ndarray  # (L, r)
    gmm_weights: np.ndarray  # (K,) (empty unless reduce == "gmm")
    gmm_means: np.ndarray  # (K, r)
    gmm_precisions_cholesky: np.ndarray  # (K, r, r)


def mulde_arrays(model: MULDE) -> MuldeArrays:
    state = model.fusion_.state()
    n_scales = len(model.scales_)
    identity = {"mean": np.zeros(n_scales), "std": np.ones(n_scales), "projection": np.eye(n_scales)}
    if model.fusion in ("max", "mean"):
        state = {**identity, **state, "projection": np.eye(n_scales)}
        state |= {
            "weights_": np.zeros(0),
            "means_": np.zeros((0, n_scales)),
            "precisions_cholesky_": np.zeros((0,) * 3),
        }
    elif model.fusion == "gmm":
        state = {**identity, **state}
    elif model.fusion != "robust":
        raise ValueError(f"export does not know fusion {model.fusion!r}; extend inference.export.mulde_arrays")
    return MuldeArrays(
        mean=np.asarray(model.mean_, np.float64),
        scale=np.asarray(model.scale_, np.float64),
        sigmas=np.asarray(model.scales_, np.float32),
        network=copy.deepcopy(model.network_).cpu().eval(),
        log_density=model.parametrization == "log_density",
        reduce=model.fusion if model.fusion in ("max", "mean") else "gmm",
        z_mean=np.asarray(state["mean"], np.float64),
        z_std=np.asarray(state["std"], np.float64),
        projection=np.asarray(state["projection"], np.float64),
        gmm_weights=np.asarray(state["weights_"], np.float64),
        gmm_means=np.asarray(state["means_"], np.float64),
        gmm_precisions_cholesky=np.asarray(state["precisions_cholesky_"], np.float64),
    )


class ExportedScorer(nn.Module):
    """Raw features (n, d) float32 → (n, 2) float64 [anomaly score (``MULDE.anomaly_score``), calibrated score]."""

    def __init__(self, arrays: MuldeArrays, calibration: Calibration) -> None:
        super().__init__()
        layer = arrays.network.input_layer
        d = layer.in_features - 1
        self.log_density, self.reduce = arrays.log_density, arrays.reduce

        def buffer(name: str, value: np.ndarray) -> None:
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(value)))

        buffer("mean", arrays.mean)
        buffer("scale", arrays.scale)
        buffer("sigmas", arrays.sigmas)
        self.register_buffer("w_x", layer.weight.detach()[:, :d].clone())
        self.register_buffer("w_sigma", layer.weight.detach()[:, d].clone())
        self.register_buffer("bias", layer.bias.detach().clone())
        self.body = arrays.network.body.requires_grad_(False)
        buffer("z_mean", arrays.z_mean)
        buffer("z_std", arrays.z_std)
        buffer("projection", arrays.projection)
        buffer("log_weights", np.log(np.maximum(arrays.gmm_weights, 1e-300)))
        buffer("means", arrays.gmm_means)
        buffer("precisions", arrays.gmm_precisions_cholesky)
        chol = arrays.gmm_precisions_cholesky
        buffer("log_det", np.log(np.abs(np.diagonal(chol, axis1=1, axis2=2))).sum(axis=1))
        self.register_buffer("calibration", torch.tensor([calibration.low, calibration.high], dtype=torch.float64))
        self.log_tail = calibration.tail == "log"
        self.log_2pi_r = float(arrays.projection.shape[1] * math.log(2 * math.pi))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_std = ((x.to(torch.float64) - self.mean) / self.scale).to(torch.float32)
        shared = torch.nn.functional.linear(x_std, self.w_x, self.bias)  # the x-part once for all σ
        f = self.body(shared.unsqueeze(1) + self.sigmas.view(1, -1, 1) * self.w_sigma)  # (n, L, out)
        z = f[:, :, 0] if self.log_density else (f * f).sum(dim=-1)
        u = ((z.to(torch.float64) - self.z_mean) / self.z_std) @ self.projection
        if self.reduce == "max":
            score = u.max(dim=1).values
        elif self.reduce == "mean":
            score = u.mean(dim=1)
        else:
            y = torch.einsum("nl,klm->nkm", u, self.precisions) - torch.einsum(
                "kl,klm->km", self.means, self.precisions
            )
            log_prob = -0.5 * (self.log_2pi_r + (y * y).sum(dim=-1)) + self.log_det + self.log_weights
            score = -torch.logsumexp(log_prob, dim=1)
        calibrated = (score - self.calibration[0]) / (self.calibration[1] - self.calibration[0])
        if self.log_tail:  # Calibration.transform's tail="log"
            calibrated = torch.where(calibrated > 1, 1 + torch.log(calibrated.clamp(min=1)), calibrated)
        return torch.stack([score, calibrated], dim=1)


def _write_module(module: ExportedScorer, n_features: int, path: Path, fmt: ExportFormat) -> None:
    example = torch.zeros(2, n_features, dtype=torch.float32)
    if fmt == "torchscript":
        with warnings.catch_warnings():  # TorchScript is deprecated upstream, still supported: nothing to act on
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.", category=FutureWarning)
            torch.jit.script(module).save(str(path))
        return
    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=["features"],
        output_names=["scores"],
        dynamic_shapes={"x": {0: torch.export.Dim("n")}},
        dynamo=True,
        external_data=False,
        verbose=False,
    )


def export_bundle(bundle: Bundle, out: str | Path, fmt: ExportFormat) -> Path:
    """Write one ``<type><suffix>`` module per feature type, ``arrays.npz`` and ``scoring.json`` under ``out``."""
    if fmt not in SUFFIX:
        raise ValueError(f"export format must be one of {sorted(SUFFIX)}, got {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    types = {}
    for name, feature in bundle.features.items():
        plain = mulde_arrays(feature.model)
        n_features = int(feature.model.n_features_in_)
        _write_module(ExportedScorer(plain, feature.calibration).eval(), n_features, out / f"{name}{SUFFIX[fmt]}", fmt)
        for field in ("mean", "scale", "sigmas", "z_mean", "z_std", "projection", *GMM_FIELDS):
            arrays[f"{name}/{field}"] = getattr(plain, field)
        arrays[f"{name}/calibration"] = np.array([feature.calibration.low, feature.calibration.high])
        types[name] = {
            "file": f"{name}{SUFFIX[fmt]}",
            "n_features": n_features,
            "calibration_tail": feature.calibration.tail,
        }
    np.savez(out / "arrays.npz", **arrays)
    scoring = {
        "format": fmt,
        "feature_types": types,
        "module": "features (n, d) float32 -> scores (n, 2) float64: [MULDE anomaly score, calibrated]",
        "frame_score": "per type: max of the objects' calibrated scores on the frame (empty_fill if none); "
        "fused = sum over types; smoothed with a Gaussian of sigma frames; anomalous where smoothed > threshold",
        "empty_fill": bundle.empty_fill,
        "smoothing_sigma": bundle.smoothing_sigma,
        "threshold": bundle.threshold.value,
        "extraction": {"preset": bundle.preset, **bundle.extraction},
    }
    (out / "scoring.json").write_text(json.dumps(scoring, indent=2) + "\n")
    return out

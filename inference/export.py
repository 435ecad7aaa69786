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
SUFFIX = {"torchscript": ".pt", "onnx": ".onnx"}


@dataclass(frozen=True)
class MuldeArrays:
    """What a fitted MULDE scores with. The one place that reads MULDE's fitted attributes for export."""

    mean: np.ndarray  # (d,) standardiser
    scale: np.ndarray  # (d,)
    sigmas: np.ndarray  # (L,) test noise levels
    network: nn.Module  # NoiseConditionedMLP: input_layer on [x, σ], then body
    log_density: bool  # False: the MSMA score network, scored by ‖s(x, σ)‖²
    gmm_weights: np.ndarray  # (K,)
    gmm_means: np.ndarray  # (K, L)
    gmm_precisions_cholesky: np.ndarray  # (K, L, L), full covariance


def mulde_arrays(model: MULDE) -> MuldeArrays:
    gmm = model.gmm_
    if gmm.covariance_type != "full":
        raise ValueError(f"export handles a full-covariance GMM, this model has {gmm.covariance_type!r}")
    return MuldeArrays(
        mean=np.asarray(model.mean_, np.float64),
        scale=np.asarray(model.scale_, np.float64),
        sigmas=np.asarray(model.scales_, np.float32),
        network=copy.deepcopy(model.network_).cpu().eval(),
        log_density=model.parametrization == "log_density",
        gmm_weights=np.asarray(gmm.weights_, np.float64),
        gmm_means=np.asarray(gmm.means_, np.float64),
        gmm_precisions_cholesky=np.asarray(gmm.precisions_cholesky_, np.float64),
    )


class ExportedScorer(nn.Module):
    """Raw features (n, d) float32 → (n, 2) float64 [anomaly score (GMM NLL), calibrated score]."""

    def __init__(self, arrays: MuldeArrays, calibration: Calibration) -> None:
        super().__init__()
        layer = arrays.network.input_layer
        d = layer.in_features - 1
        self.log_density = arrays.log_density
        self.register_buffer("mean", torch.from_numpy(arrays.mean))
        self.register_buffer("scale", torch.from_numpy(arrays.scale))
        self.register_buffer("sigmas", torch.from_numpy(arrays.sigmas))
        self.register_buffer("w_x", layer.weight.detach()[:, :d].clone())
        self.register_buffer("w_sigma", layer.weight.detach()[:, d].clone())
        self.register_buffer("bias", layer.bias.detach().clone())
        self.body = arrays.network.body.requires_grad_(False)
        self.register_buffer("log_weights", torch.from_numpy(np.log(arrays.gmm_weights)))
        self.register_buffer("means", torch.from_numpy(arrays.gmm_means))
        self.register_buffer("precisions", torch.from_numpy(arrays.gmm_precisions_cholesky))
        log_det = np.log(np.diagonal(arrays.gmm_precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)
        self.register_buffer("log_det", torch.from_numpy(log_det))
        self.register_buffer("calibration", torch.tensor([calibration.low, calibration.high], dtype=torch.float64))
        self.log_2pi_l = float(len(arrays.sigmas) * math.log(2 * math.pi))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_std = ((x.to(torch.float64) - self.mean) / self.scale).to(torch.float32)
        shared = torch.nn.functional.linear(x_std, self.w_x, self.bias)  # the x-part once for all σ
        f = self.body(shared.unsqueeze(1) + self.sigmas.view(1, -1, 1) * self.w_sigma)  # (n, L, out)
        z = f[:, :, 0] if self.log_density else (f * f).sum(dim=-1)
        z = z.to(torch.float64)
        y = torch.einsum("nl,klm->nkm", z, self.precisions) - torch.einsum("kl,klm->km", self.means, self.precisions)
        log_prob = -0.5 * (self.log_2pi_l + (y * y).sum(dim=-1)) + self.log_det + self.log_weights
        score = -torch.logsumexp(log_prob, dim=1)
        calibrated = (score - self.calibration[0]) / (self.calibration[1] - self.calibration[0])
        return torch.stack([score, calibrated], dim=1)


def _write_module(module: ExportedScorer, n_features: int, path: Path, fmt: ExportFormat) -> None:
    example = torch.zeros(2, n_features, dtype=torch.float32)
    if fmt == "torchscript":
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
        for field in ("mean", "scale", "sigmas", "gmm_weights", "gmm_means", "gmm_precisions_cholesky"):
            arrays[f"{name}/{field}"] = getattr(plain, field)
        arrays[f"{name}/calibration"] = np.array([feature.calibration.low, feature.calibration.high])
        types[name] = {"file": f"{name}{SUFFIX[fmt]}", "n_features": n_features}
    np.savez(out / "arrays.npz", **arrays)
    scoring = {
        "format": fmt,
        "feature_types": types,
        "module": "features (n, d) float32 -> scores (n, 2) float64: [GMM negative log-likelihood, calibrated]",
        "frame_score": "per type: max of the objects' calibrated scores on the frame (empty_fill if none); "
        "fused = sum over types; smoothed with a Gaussian of sigma frames; anomalous where smoothed > threshold",
        "empty_fill": bundle.empty_fill,
        "smoothing_sigma": bundle.smoothing_sigma,
        "threshold": bundle.threshold.value,
        "extraction": {"preset": bundle.preset, **bundle.extraction},
    }
    (out / "scoring.json").write_text(json.dumps(scoring, indent=2) + "\n")
    return out

"""Whether ``cpu_precision="bf16"`` can run at bfloat16 here: one answer for the detector and the encoder."""

from __future__ import annotations

import functools
import logging

import torch

log = logging.getLogger(__name__)


@functools.cache
def native_bf16() -> bool:
    """The CPU computes bfloat16 in hardware (AVX512-BF16 or AMX). Elsewhere oneDNN emulates it, slower
    than float32, so bfloat16 would cost time and precision for nothing."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def cpu_bf16(precision: str, device: torch.device | str = "cpu") -> bool:
    """Run at bfloat16: asked for (``precision == "bf16"``), on the CPU, and native there. A request this CPU
    cannot serve falls back to float32 with a warning (features then equal the float32 ones)."""
    if precision != "bf16" or torch.device(device).type != "cpu":
        return False
    if not native_bf16():
        _warn_emulated()
        return False
    return True


@functools.cache
def _warn_emulated() -> None:
    log.warning(
        "cpu_precision='bf16': this CPU has no native bfloat16 (AVX512-BF16 or AMX), so the detector and the "
        "encoder run at float32, which is faster here; set cpu_precision=fp32 to silence this"
    )

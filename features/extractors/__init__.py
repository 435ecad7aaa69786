"""Object feature extractors: one small protocol and a registry by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mulde_vad.features.batch import ObjectBatch

if TYPE_CHECKING:
    from mulde_vad.features.config import ExtractionConfig


class ObjectExtractor(Protocol):
    """Turns every object of a batch into one feature row: ``__call__`` returns (n_objects, dim)."""

    name: str
    dim: int
    needs_flow: bool

    def __call__(self, batch: ObjectBatch) -> np.ndarray: ...


_REGISTRY: dict[str, Callable[[ExtractionConfig], ObjectExtractor]] = {}


def register(name: str) -> Callable:
    """Class decorator: ``@register("velocity")`` makes ``build_extractor("velocity", config)`` build it."""

    def decorate(factory: Callable[[ExtractionConfig], ObjectExtractor]) -> Callable:
        _REGISTRY[name] = factory
        return factory

    return decorate


def build_extractor(name: str, config: ExtractionConfig) -> ObjectExtractor:
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown extractor {name!r}; available: {sorted(_REGISTRY)}")
    return _REGISTRY[name](config)


def available_extractors() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    """Import the built-in extractor modules (they register themselves); heavy libraries load lazily inside."""
    from mulde_vad.features.extractors import backbone, clip, geometry, handcrafted, pose, velocity  # noqa: F401

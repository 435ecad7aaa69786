"""The live display of a long command: one tqdm line per stage on stderr, the same fractions to a listener.

Extraction shows videos done / total, frames per second (frames extracted / wall time) and the time left;
training shows the fraction of its models done, moved by each model's optimiser steps, with the current
step and loss. A listener (the pipeline's Prefect progress artifact) gets the fraction done whenever its
whole percent changes, so a long training does not send one API call per epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from tqdm.auto import tqdm

#: Told the fraction done, 0..1.
Listener = Callable[[float], None]
#: Training moves by fractions of a model: the count (1.37/2) would read as noise, the percentage does not.
_FRACTION_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"


class Progress:
    """``total`` units of one stage; shown while ``enabled``, told to ``listener`` always."""

    def __init__(
        self,
        desc: str,
        total: int,
        unit: str,
        *,
        enabled: bool,
        listener: Listener | None = None,
        fractional: bool = False,
    ) -> None:
        self.total = total
        self.done: float = 0  # an int while whole units are counted: tqdm shows "2/6", not "2.0/6"
        self._listener = listener
        self._percent = -1
        self._bar = tqdm(
            total=total,
            desc=desc,
            unit=unit,
            disable=not enabled,
            bar_format=_FRACTION_FORMAT if fractional else None,
            dynamic_ncols=True,
        )

    def set(self, done: float, note: str | None = None) -> None:
        """Move to ``done`` of ``total``; ``note`` replaces the text after the bar."""
        if note is not None:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(done - self.done)
        self.done = done
        percent = int(100 * done / self.total) if self.total else 100
        if self._listener is not None and percent != self._percent:
            self._percent = percent
            self._listener(percent / 100)

    def advance(self, note: str | None = None) -> None:
        """One more unit done."""
        self.set(self.done + 1, note)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class ExtractionProgress(Progress):
    """Videos done / total, with the frames per second of the frames extracted so far."""

    def __init__(self, total: int, *, enabled: bool, listener: Listener | None = None) -> None:
        super().__init__("extract", total, "video", enabled=enabled, listener=listener)
        self.frames = 0
        self._started = time.perf_counter()

    def video_done(self, n_frames: int) -> None:
        """One more video finished with ``n_frames`` extracted (0 when reused from the store or failed)."""
        self.frames += n_frames
        fps = self.frames / max(time.perf_counter() - self._started, 1e-9)
        self.advance(f"{fps:.1f} frames/s")


class TrainingProgress(Progress):
    """Models done / total; each model moves the bar by its steps and shows its step and loss."""

    def __init__(self, total: int, *, enabled: bool, listener: Listener | None = None) -> None:
        super().__init__("train", total, "model", enabled=enabled, listener=listener, fractional=True)
        self._models = 0

    def on_epoch(self, name: str) -> Callable[[int, int, float], None]:
        """The ``MULDE.fit(on_epoch=...)`` callback of the next model, named ``name``."""
        models = self._models

        def show(step: int, n_steps: int, loss: float) -> None:
            self.set(models + step / n_steps, f"{name} step {step}/{n_steps} loss {loss:.4g}")

        return show

    def model_done(self) -> None:
        """The model being trained (or loaded from the store) is finished."""
        self._models += 1
        self.set(self._models)

"""Progress bars: tqdm when installed, else one line per finished loop."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """A progress bar over ``total`` samples that shows the running loss and samples/s.

    Args:
        total: Samples (images, tokens) in the loop.
        desc: Label in front of the bar.
        enabled: False silences it (tests, ``--quiet``).
        unit: What a sample is called on the bar.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, unit: str = "img") -> None:
        self.total, self.desc, self.enabled, self.unit = total, desc, enabled, unit
        self.done, self.loss_sum, self.start = 0, 0.0, time.perf_counter()
        self._bar: Any | None = None
        if enabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=total,
                    desc=desc,
                    unit=unit,
                    leave=False,
                    dynamic_ncols=True,
                    file=sys.stderr,
                )
            except ImportError:
                self._bar = None

    def update(self, images: int, loss: float | None = None) -> None:
        """Count a finished batch of ``images`` samples (with its mean ``loss`` when
        training)."""
        self.done += images
        if loss is not None:
            self.loss_sum += loss * images
        if self._bar is not None:
            self._bar.update(images)
            if loss is not None:
                self._bar.set_postfix(loss=f"{self.mean_loss:.4f}", refresh=False)

    @property
    def mean_loss(self) -> float:
        """Mean loss per sample so far."""
        return self.loss_sum / max(self.done, 1)

    @property
    def rate(self) -> float:
        """Samples per second so far."""
        return self.done / max(time.perf_counter() - self.start, 1e-9)

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()

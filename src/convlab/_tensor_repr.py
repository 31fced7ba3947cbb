"""How ``repr(tensor)`` writes the values: PyTorch's formatter (``torch._tensor_str``) rules.

Floating values print with 4 decimals (``1.5000``), as integers with a trailing point when every
value is whole (``2.``), in scientific notation when the magnitudes span more than 1000x or fall
outside [1e-4, 1e8); every element is padded to one width. Large tensors are summarised with
``...`` (more than 1000 elements: 3 items at each edge), as PyTorch prints them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["format_values"]

_PRECISION = 4
_THRESHOLD = 1000
_EDGE_ITEMS = 3
_LINE_WIDTH = 80


class _Formatter:
    """PyTorch's ``_Formatter``: one width and one notation for all the values."""

    def __init__(self, values: np.ndarray) -> None:
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not self.floating:
            for value in flat.tolist():
                self.max_width = max(self.max_width, len(str(value)))
            return
        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            return
        magnitudes = np.abs(finite)
        low, high = float(magnitudes.min()), float(magnitudes.max())
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        if self.int_mode:
            if high / low > 1000.0 or high > 1.0e8:
                self.sci_mode = True
                widths = (len(f"{v:.{_PRECISION}e}") for v in finite.tolist())
            else:
                widths = (len(f"{v:.0f}") + 1 for v in finite.tolist())
        else:
            if high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4:
                self.sci_mode = True
                widths = (len(f"{v:.{_PRECISION}e}") for v in finite.tolist())
            else:
                widths = (len(f"{v:.{_PRECISION}f}") for v in finite.tolist())
        self.max_width = max(self.max_width, *widths)

    def format(self, value: Any) -> str:
        if self.floating:
            value = float(value)
            if self.sci_mode:
                text = f"{value:{self.max_width}.{_PRECISION}e}"
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{value:.{_PRECISION}f}"
        elif values_are_bool(value):
            text = str(bool(value))
        else:
            text = str(value)
        return (self.max_width - len(text)) * " " + text


def values_are_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _summarised(values: np.ndarray) -> np.ndarray:
    """The values PyTorch looks at to choose the format of a summarised tensor."""
    if values.ndim == 0:
        return values
    if values.shape[0] > 2 * _EDGE_ITEMS:
        values = np.concatenate([values[:_EDGE_ITEMS], values[-_EDGE_ITEMS:]])
    return np.stack([_summarised(v) for v in values]) if values.ndim > 1 else values


def _lines(values: np.ndarray, fmt: _Formatter, indent: int, summarise: bool) -> str:
    if values.ndim == 0:
        return fmt.format(values.item())
    if values.ndim == 1:
        items = values.tolist()
        if summarise and len(items) > 2 * _EDGE_ITEMS:
            texts = [fmt.format(v) for v in items[:_EDGE_ITEMS]] + [" ..."]
            texts += [fmt.format(v) for v in items[-_EDGE_ITEMS:]]
        else:
            texts = [fmt.format(v) for v in items]
        per_line = max(1, (_LINE_WIDTH - indent) // (fmt.max_width + 2))
        rows = [", ".join(texts[i : i + per_line]) for i in range(0, len(texts), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(rows) + "]"
    count = values.shape[0]
    if summarise and count > 2 * _EDGE_ITEMS:
        parts = [_lines(values[i], fmt, indent + 1, summarise) for i in range(_EDGE_ITEMS)]
        parts.append("...")
        parts += [
            _lines(values[i], fmt, indent + 1, summarise) for i in range(count - _EDGE_ITEMS, count)
        ]
    else:
        parts = [_lines(values[i], fmt, indent + 1, summarise) for i in range(count)]
    separator = "," + "\n" * (values.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(parts) + "]"


def format_values(values: np.ndarray) -> str:
    """The values of a tensor as PyTorch's ``repr`` writes them (without ``tensor(``)."""
    if values.size == 0:
        return "[]" if values.ndim <= 1 else f"[], size={tuple(values.shape)}"
    summarise = values.size > _THRESHOLD
    fmt = _Formatter(_summarised(values) if summarise else values)
    return _lines(values, fmt, len("tensor("), summarise)

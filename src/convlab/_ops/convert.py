"""Moving tensors between devices and dtypes, with gradients flowing back."""

from __future__ import annotations

from typing import Any

from convlab.autograd import Function


class ToDevice(Function):
    """Copy to ``backend`` and/or cast to ``dtype``; the gradient is copied / cast back."""

    def forward(self, a: Any, backend: Any = None, dtype: Any = None) -> Any:
        self.source, self.source_dtype = self.backend, a.dtype
        if backend is not self.backend:
            a = backend.asarray(self.backend.to_numpy(a))  # a new array on the target
            self.backend = backend
        elif dtype is None or dtype == a.dtype:
            return a.copy()
        return a.astype(dtype) if dtype is not None and dtype != a.dtype else a

    def backward(self, grad: Any) -> tuple:
        if self.source is not self.backend:
            grad = self.source.asarray(self.backend.to_numpy(grad))
        return (grad.astype(self.source_dtype, copy=False),)

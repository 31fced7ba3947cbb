"""The CPU backend's binary first-layer convolution: lookup tables of 3-tap bit patterns
(see :mod:`convlab._ops.binary` and ``convlab._cpu._binary``)."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from convlab import _settings
from convlab import _validate as check
from convlab._cpu import _binary

__all__ = ["CPUBinaryKernels"]


def _contiguous(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array)


def _check_out(out: Any, shape: tuple, dtype: np.dtype, name: str = "out") -> np.ndarray:
    return check.out_array(out, shape, dtype, np.ndarray, name)


class CPUBinaryKernels:
    """The binary layer's kernels of the CPU backend."""

    # binary_conv2d_forward rejects uint8 pixels other than 0 and 1 while it copies them, so
    # callers need no pass of their own over the images
    checks_binary_pixels = True

    def binary_conv2d_forward(self, x: np.ndarray, packed: bool, tables: np.ndarray,
                              base_values: Optional[np.ndarray],
                              base_index: Optional[np.ndarray], bias: np.ndarray,
                              shape: Sequence[int], kernel_size: Any, stride: Any = 1,
                              padding: Any = 0, dilation: Any = 1,
                              out: Optional[np.ndarray] = None) -> np.ndarray:
        """Binary-image convolution from lookup tables (see ``convlab._ops.binary``).

        Args:
            x: uint8 0/1 images flattened per image (N, C*H*W), or bit-packed per channel
                plane (N, C*ceil(H*W/8)) when ``packed``.
            tables: (Cout, R, 8) sums of weights per 3-tap pattern, R = C*KH*ceil(KW/3).
            base_values, base_index: Optional start values: output pixel (c, oh, ow) starts
                from ``base_values[c, base_index[oh, ow]]`` ((Cout, K), and (OH, OW) int32);
                without them from ``bias[c]`` (Cout,).
        """
        shape, kernel, stride, padding, dilation, out_hw = check.binary_operands(
            x, packed, shape, kernel_size, stride, padding, dilation, "binary_conv2d_forward")
        cout, dtype = check.binary_tables(tables, bias, base_values, base_index, shape, kernel,
                                          out_hw)
        x = _contiguous(x)
        if base_values is not None:
            base_values, base_index = _contiguous(base_values), _contiguous(base_index)
        # whole cache lines: the column kernels' stores and index loads then never straddle two
        out = _check_out(out, (x.shape[0], cout) + out_hw, dtype) if out is not None \
            else _binary.aligned_empty((x.shape[0], cout) + out_hw, dtype)
        return _binary.forward(x, bool(packed), _contiguous(tables), base_values, base_index,
                               _contiguous(bias), shape, kernel, stride, padding, dilation,
                               out_hw, out, _settings.get_num_threads())

    def binary_conv2d_weight_sums(self, x: np.ndarray, packed: bool, grad_output: np.ndarray,
                                  cls: np.ndarray, n_classes: int, shape: Sequence[int],
                                  kernel_size: Any, stride: Any = 1, padding: Any = 0,
                                  dilation: Any = 1, row_starts: Optional[Any] = None
                                  ) -> Tuple[np.ndarray, np.ndarray]:
        """Output gradients summed where each kernel tap sees a 1: the weight gradient's raw
        material.

        Args:
            row_starts: Boundaries of the runs of output rows to sum the column classes over
                (run r: rows ``row_starts[r] .. row_starts[r+1] - 1``); None: every row alone.

        Returns:
            ``taps`` (Cout, C, KH, KW), the gradient summed over the output pixels whose input
            pixel under that tap is 1, and ``colsum`` (runs, n_classes, Cout), the gradient
            summed per run of output rows and per column class ``cls[ow]``.
        """
        shape, kernel, stride, padding, dilation, _, n_classes, cls, row_starts = \
            check.binary_gradient_operands(x, packed, grad_output, cls, n_classes, row_starts,
                                           shape, kernel_size, stride, padding, dilation,
                                           "binary_conv2d_weight_sums", np)
        x = _contiguous(x)
        return _binary.weight_sums(x, bool(packed), _contiguous(grad_output), cls, n_classes,
                                   row_starts, shape, kernel, stride, padding, dilation,
                                   _settings.get_num_threads())

    def binary_layer_forward(self, x: np.ndarray, packed: bool, weight: np.ndarray,
                             bias: Optional[np.ndarray], zero_value: float, std: float,
                             run_taps: np.ndarray, base_index: np.ndarray,
                             shape: Sequence[int], kernel_size: Any, stride: Any = 1,
                             padding: Any = 0, dilation: Any = 1) -> Optional[np.ndarray]:
        """A one-channel float32 binary layer's forward in one call, from its weights.

        For ``convlab._ops.binary``, which has checked the operands: lookup tables, start
        values and kernels in C, so that no NumPy steps run between two batches' kernels
        (cache-cold there, they cost 0.2-0.3 ms a call on the 20-day layer).

        Args:
            x: uint8 images (N, H*W), 0/1 or bit-packed.
            weight: (Cout, 1, KH, KW); bias: (Cout,) or None.
            zero_value: ``-mean / std``, what the taps in ``run_taps`` see of a 0 pixel.
            run_taps: (runs, KH*KW) float64 taps counted per run of output pixels;
                base_index: (OH, OW) int32, each output pixel's run.

        Returns:
            The (N, Cout, OH, OW) output; None where the AVX-512 column kernels do not apply
            (the caller then takes the general path).
        """
        shape, kernel, stride, padding, dilation, out_hw = check.binary_operands(
            x, packed, shape, kernel_size, stride, padding, dilation, "binary_layer_forward")
        check.binary_layer_operands(weight, bias, zero_value, std, run_taps, base_index,
                                    shape, kernel, out_hw)
        return _binary.layer_forward(
            _contiguous(x), bool(packed), _contiguous(weight),
            None if bias is None else _contiguous(bias), float(zero_value), float(std),
            _contiguous(run_taps), _contiguous(base_index), shape, kernel, stride, padding,
            dilation, out_hw, _settings.get_num_threads())

    def binary_layer_weight_grad(self, x: np.ndarray, packed: bool, grad_output: np.ndarray,
                                 cls: np.ndarray, n_classes: int, row_starts: np.ndarray,
                                 class_run_taps: Optional[np.ndarray], zero_value: float,
                                 std: float, shape: Sequence[int], kernel_size: Any,
                                 stride: Any = 1, padding: Any = 0, dilation: Any = 1
                                 ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """The weight and bias gradients of :meth:`binary_layer_forward`'s layer.

        Args:
            class_run_taps: (runs * n_classes, KH*KW) float64 taps inside the image per run
                of rows (``row_starts``) and column class (``cls``); None when every tap
                sees ``zero_value`` (the fold into the weights).

        Returns:
            ``(grad_weight, grad_bias)``; None where the column kernels do not apply.
        """
        shape, kernel, stride, padding, dilation, _, n_classes, cls, row_starts = \
            check.binary_gradient_operands(x, packed, grad_output, cls, n_classes, row_starts,
                                           shape, kernel_size, stride, padding, dilation,
                                           "binary_layer_weight_grad", np)
        check.binary_fold_operands(class_run_taps, len(row_starts) - 1, n_classes, kernel,
                                   zero_value, std)
        if grad_output.size == 0:      # no images or no channels: nothing flows back
            cout = grad_output.shape[1]
            return (np.zeros((cout, 1) + kernel, grad_output.dtype),
                    np.zeros(cout, grad_output.dtype))
        return _binary.layer_weight_grad(
            _contiguous(x), bool(packed), _contiguous(grad_output), cls, n_classes, row_starts,
            None if class_run_taps is None else _contiguous(class_run_taps),
            float(zero_value), float(std), shape, kernel, stride, padding, dilation,
            _settings.get_num_threads())

"""A pickle reader that runs no code: it rebuilds only plain data and NumPy number arrays.

The Python version of CIFAR-10 is a pickle of ``{b"data": ndarray, b"labels": [...], ...}``.
``pickle.load`` on a file from the internet can run any code the file names, so this reader
resolves no module attribute except four stand-ins of its own: an array placeholder (for
NumPy's ``_reconstruct`` / ``ndarray`` / ``dtype``) that becomes ``numpy.frombuffer`` of the
stored bytes, and ``_codecs.encode(text, "latin1")`` (how Python 3 pickles ``bytes`` in
protocol 2). Every other global is refused before anything is called.
"""
from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

__all__ = ["UnsafePickleError", "load_plain_pickle"]

# Plain numeric dtypes only: an "O" (object) array would hold pickled objects again.
_DTYPES = {"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"}


class UnsafePickleError(pickle.UnpicklingError):
    """The file asks for something other than plain data (refused, nothing was run)."""


class _DType:
    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        if isinstance(spec, bytes):
            spec = spec.decode("ascii", "replace")
        if spec not in _DTYPES:
            raise UnsafePickleError(f"refused an array of dtype {spec!r}: only plain numbers "
                                    f"({', '.join(sorted(_DTYPES))}) are read")
        self.spec, self.order = spec, "|"

    def __setstate__(self, state: Any) -> None:
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if isinstance(order, bytes):
            order = order.decode("ascii", "replace")
        if order in ("<", ">", "|", "="):
            self.order = order

    def numpy(self) -> np.dtype:
        order = {"|": "=", "=": "="}.get(self.order, self.order)
        return np.dtype(self.spec).newbyteorder(order) if self.spec[1] != "1" \
            else np.dtype(self.spec)


class _NDArrayType:
    """Stands for ``numpy.ndarray`` as the first argument of ``_reconstruct``."""


class _Array:
    def __init__(self) -> None:
        self.value: Any = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("refused an array with an unexpected pickled state")
        shape, dtype, fortran, raw = state[-4:]
        if not isinstance(dtype, _DType):
            raise UnsafePickleError("refused an array whose dtype is not a plain number type")
        if isinstance(raw, str):                # written by Python 2: bytes stored as text
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError("refused an array whose data are not raw bytes")
        shape = tuple(int(s) for s in shape)
        dt = dtype.numpy()
        if int(np.prod(shape)) * dt.itemsize != len(raw):
            raise pickle.UnpicklingError(f"corrupted array: shape {shape} of {dt} needs "
                                         f"{int(np.prod(shape)) * dt.itemsize} bytes, the "
                                         f"file has {len(raw)}")
        self.value = np.frombuffer(raw, dt).reshape(shape, order="F" if fortran else "C")


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Array:
    if cls is not _NDArrayType:
        raise UnsafePickleError("refused to rebuild an array subclass")
    return _Array()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> _Array:
    array = _Array()
    array.__setstate__((tuple(shape), dtype, order == "F", bytes(buffer)))
    return array


def _encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused _codecs.encode other than text to latin-1 bytes")
    return text.encode("latin1")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): _NDArrayType,
    ("numpy", "dtype"): _DType,
    ("_codecs", "encode"): _encode,
}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load {module}.{name}: this reader only accepts dicts, lists, "
                f"tuples, strings, bytes, numbers and NumPy number arrays (nothing was run)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent reference (nothing was run)")


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, _Array):
        if obj.value is None:
            raise UnsafePickleError("refused an array with no data")
        return obj.value
    if isinstance(obj, (_DType, _NDArrayType)) or obj is _NDArrayType:
        raise UnsafePickleError("refused a bare NumPy type object")
    if isinstance(obj, dict):
        return {_unwrap(k): _unwrap(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unwrap(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_unwrap(v) for v in obj)
    if obj is None or isinstance(obj, (str, bytes, bytearray, int, float, bool, complex)):
        return obj
    raise UnsafePickleError(f"refused an object of type {type(obj).__name__}")


def load_plain_pickle(data: bytes) -> Any:
    """Unpickle ``data`` allowing only plain values and NumPy number arrays.

    Python 2 strings come back as ``bytes`` (as ``pickle.load(..., encoding="bytes")`` gives).

    Raises:
        UnsafePickleError: If the data name any other class or function (nothing is run).
        pickle.UnpicklingError: If the data are not a valid pickle.
    """
    try:
        return _unwrap(_PlainUnpickler(io.BytesIO(data), encoding="bytes").load())
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
            KeyError, AttributeError, MemoryError, OverflowError) as err:
        raise pickle.UnpicklingError(f"not a valid pickle ({type(err).__name__}: {err})") \
            from None

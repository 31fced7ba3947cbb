"""A pickle reader that runs no code: it rebuilds only plain data and NumPy number arrays.

The Python version of CIFAR-10 is a pickle of ``{b"data": ndarray, b"labels": [...], ...}``.
``pickle.load`` on a file from the internet can run any code the file names, so this reader
resolves no module attribute except a few stand-ins of its own: an array placeholder (for
NumPy's ``_reconstruct`` / ``ndarray`` / ``dtype``) that becomes ``numpy.frombuffer`` of the
stored bytes, ``_codecs.encode(text, "latin1")`` and ``bytes()`` (how Python 3 pickles
``bytes`` in protocol 2). Every other global is refused before anything is called.

A small file must not cost much time or memory either. Before unpickling, the opcodes are
scanned: every length they declare must fit in the data, and memo slots are numbered as picklers
number them (a crafted ``LONG_BINPUT 2**31`` would make the unpickler allocate a 16 GiB memo).
After unpickling, the result is rebuilt once per object (shared references stay shared, as
``pickle`` gives them), and refused if it contains itself, is nested more than ``max_depth``
levels deep, or holds more than ``max_items`` values once shared references are counted each
time they appear (``o = [o, o]`` forty times over is 3.6 KB of pickle and 2**40 items to anyone
who walks it).
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
from typing import Any, Literal, cast

import numpy as np

__all__ = ["UnsafePickleError", "load_plain_pickle", "MAX_DEPTH", "MAX_ITEMS"]

#: Default for ``load_plain_pickle(max_depth=...)``: CIFAR batches are 2 levels deep.
MAX_DEPTH = 32
#: Default for ``load_plain_pickle(max_items=...)``: a CIFAR-10 batch holds about 20,000 values
#: (labels and file names), CIFAR-100's training file about 150,000.
MAX_ITEMS = 1_000_000
# Opcodes per value in the worst legitimate case (value, PUT, MARK, APPEND/SETITEM).
_OPCODES_PER_ITEM = 4
_PUT_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT"}

# Plain numeric dtypes only: an "O" (object) array would hold pickled objects again.
_DTYPES = {"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"}


class UnsafePickleError(pickle.UnpicklingError):
    """The file asks for something other than plain data (refused, nothing was run)."""


_ByteOrder = Literal["<", ">", "|", "="]


class _DType:
    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        if isinstance(spec, bytes):
            spec = spec.decode("ascii", "replace")
        if spec not in _DTYPES:
            raise UnsafePickleError(
                f"refused an array of dtype {spec!r}: only plain numbers "
                f"({', '.join(sorted(_DTYPES))}) are read"
            )
        self.spec: str = spec  # one of _DTYPES
        self.order: _ByteOrder = "|"

    def __setstate__(self, state: Any) -> None:
        order: Any = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if isinstance(order, bytes):
            order = order.decode("ascii", "replace")
        if order in ("<", ">", "|", "="):
            self.order = order

    def numpy(self) -> np.dtype[Any]:
        native: dict[_ByteOrder, _ByteOrder] = {"|": "=", "=": "="}
        order = native.get(self.order, self.order)
        return (
            np.dtype(self.spec).newbyteorder(order) if self.spec[1] != "1" else np.dtype(self.spec)
        )


class _StandIn:
    """What ``find_class`` hands out for an allowed global: callable with positional
    arguments, and immune to ``BUILD`` (which would otherwise set attributes on our functions
    and classes, changing how later files are read)."""

    __slots__ = ("name", "call")

    def __init__(self, name: str, call: Any) -> None:
        self.name, self.call = name, call

    def __call__(self, *args: Any) -> Any:
        return self.call(*args)

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(f"refused to change {self.name} (a BUILD on a global)")


def _ndarray(*args: Any) -> None:
    raise UnsafePickleError("refused to call numpy.ndarray (only _reconstruct makes arrays)")


#: Stands for ``numpy.ndarray`` as the first argument of ``_reconstruct``.
_NDARRAY = _StandIn("numpy.ndarray", _ndarray)


class _Array:
    def __init__(self) -> None:
        self.value: Any = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("refused an array with an unexpected pickled state")
        shape, dtype, fortran, raw = state[-4:]
        if not isinstance(dtype, _DType):
            raise UnsafePickleError("refused an array whose dtype is not a plain number type")
        if isinstance(raw, str):  # written by Python 2: bytes stored as text
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError("refused an array whose data are not raw bytes")
        if (
            not isinstance(shape, tuple)
            or len(shape) > 32
            or not all(type(d) is int and d >= 0 for d in shape)
        ):
            raise pickle.UnpicklingError(
                f"corrupted array: shape {str(shape)[:80]} is not a tuple of at most 32 sizes >= 0"
            )
        dt = dtype.numpy()
        needed = math.prod(shape) * dt.itemsize  # Python ints: no overflow
        if needed != len(raw):
            raise pickle.UnpicklingError(
                f"corrupted array: shape {shape} of {dt} needs "
                f"{needed} bytes, the file has {len(raw)}"
            )
        self.value = np.frombuffer(raw, dt).reshape(shape, order="F" if fortran else "C")


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Array:
    if cls is not _NDARRAY:
        raise UnsafePickleError("refused to rebuild an array subclass")
    return _Array()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> _Array:
    # bytes(buffer) of an int would allocate that many zero bytes: only real buffers pass
    if not isinstance(buffer, (bytes, bytearray)):
        raise UnsafePickleError("refused an array whose data are not raw bytes")
    array = _Array()
    array.__setstate__((shape, dtype, order == "F", bytes(buffer)))
    return array


def _bytes(*args: Any) -> bytes:
    if args:  # bytes(n) would allocate n bytes; protocol 2 writes bytes() only for b""
        raise UnsafePickleError("refused bytes(...) with arguments (only bytes() for b'')")
    return b""


def _encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused _codecs.encode other than text to latin-1 bytes")
    return text.encode("latin1")


_ALLOWED = {
    key: _StandIn(".".join(key), call)
    for key, call in {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("numpy", "dtype"): _DType,
        ("_codecs", "encode"): _encode,
        ("__builtin__", "bytes"): _bytes,
        ("builtins", "bytes"): _bytes,
    }.items()
}
_ALLOWED[("numpy", "ndarray")] = _NDARRAY


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


def _prescan(data: bytes, max_items: int) -> None:
    """Check the opcodes before the unpickler allocates anything they declare.

    Raises:
        UnsafePickleError: For a memo slot numbered beyond the opcodes before it, or more
            opcodes than ``max_items`` values can need.
        pickle.UnpicklingError: For an unknown opcode or a length past the end of the data.
    """
    limit = _OPCODES_PER_ITEM * max_items
    try:
        for count, (opcode, arg, pos) in enumerate(pickletools.genops(data)):
            if count > limit:
                raise UnsafePickleError(
                    f"refused a pickle of more than {limit} opcodes (max_items={max_items})"
                )
            # picklers number memo slots 0, 1, 2, ... as objects appear: a larger number only
            # makes the unpickler grow its memo table to that size
            if opcode.name in _PUT_OPCODES and not (isinstance(arg, int) and 0 <= arg <= count):
                raise UnsafePickleError(
                    f"refused memo slot {arg!r} at byte {pos} (only {count} opcodes precede it)"
                )
            if opcode.name == "FRAME" and cast(int, arg) > len(data) - (pos or 0):  # its length
                raise pickle.UnpicklingError(
                    f"a frame of {arg} bytes at byte {pos} runs past the end of the data"
                )
    except UnsafePickleError:
        raise
    except ValueError as err:  # genops: unknown opcode, truncated argument
        raise pickle.UnpicklingError(str(err)) from None


_LEAVES = (str, bytes, bytearray, int, float, bool, complex)


class _Rebuilder:
    """Turns the unpickled stand-ins into plain values, once per object.

    Containers are memoised by ``id`` (shared references stay shared, as ``pickle`` gives
    them), so the work is linear in the pickle's size; each one's size counts every value in it
    as often as it is reached, which bounds what a consumer walking the result must visit.
    """

    def __init__(self, max_depth: int, max_items: int) -> None:
        self.max_depth, self.max_items = max_depth, max_items
        self.done: dict[int, tuple[Any, int]] = {}  # id -> (rebuilt value, expanded size)
        self.active: set[int] = set()  # ids of the containers being rebuilt (cycle detection)

    def rebuild(self, obj: Any, depth: int = 0) -> tuple[Any, int]:
        """``(plain value, number of values in it counting shared ones each time)``."""
        if isinstance(obj, _Array):
            if obj.value is None:
                raise UnsafePickleError("refused an array with no data")
            return obj.value, 1
        if isinstance(obj, _DType):
            raise UnsafePickleError("refused a bare NumPy dtype")
        if isinstance(obj, _StandIn):
            raise UnsafePickleError(f"refused a bare reference to {obj.name}")
        if obj is None or isinstance(obj, _LEAVES):
            return obj, 1
        if not isinstance(obj, (dict, list, tuple)):
            raise UnsafePickleError(f"refused an object of type {type(obj).__name__}")
        key = id(obj)
        if key in self.done:
            return self.done[key]
        if key in self.active:
            raise UnsafePickleError(
                f"refused a {type(obj).__name__} that contains itself (plain data have no cycles)"
            )
        if depth >= self.max_depth:
            raise UnsafePickleError(
                f"refused data nested more than {self.max_depth} levels deep (max_depth)"
            )
        self.active.add(key)
        result = self._container(obj, depth + 1)
        self.active.discard(key)
        self.done[key] = result
        return result

    def _container(self, obj: Any, depth: int) -> tuple[Any, int]:
        size = 1
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            for k, v in obj.items():
                (key, key_size), (value, value_size) = (
                    self.rebuild(k, depth),
                    self.rebuild(v, depth),
                )
                try:
                    out[key] = value
                except TypeError:
                    raise UnsafePickleError(
                        f"refused a dict key of type {type(key).__name__}"
                    ) from None
                size = self._add(size, key_size + value_size)
            return out, size
        items = []
        for v in obj:
            value, value_size = self.rebuild(v, depth)
            items.append(value)
            size = self._add(size, value_size)
        return (items if isinstance(obj, list) else tuple(items)), size

    def _add(self, size: int, more: int) -> int:
        size += more
        if size > self.max_items:
            raise UnsafePickleError(
                f"refused data of more than {self.max_items} items when "
                f"shared references are counted each time (max_items)"
            )
        return size


def load_plain_pickle(
    data: bytes, *, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS
) -> Any:
    """Unpickle ``data`` allowing only plain values and NumPy number arrays.

    Python 2 strings come back as ``bytes`` (as ``pickle.load(..., encoding="bytes")`` gives).
    Objects referenced from several places come back shared, as ``pickle`` gives them.

    Args:
        data: The pickle.
        max_depth: The deepest nesting of dicts, lists and tuples accepted.
        max_items: The most values accepted, counting a shared value each time it is
            referenced (so the result is safe to walk, print or copy).

    Raises:
        UnsafePickleError: If the data name any other class or function (nothing is run), or
            break a bound: memo slots beyond the data, a container that contains itself,
            nesting deeper than ``max_depth``, more than ``max_items`` values.
        pickle.UnpicklingError: If the data are not a valid pickle.
    """
    try:
        _prescan(data, max_items)
        obj = _PlainUnpickler(io.BytesIO(data), encoding="bytes").load()
        return _Rebuilder(max_depth, max_items).rebuild(obj)[0]
    except UnsafePickleError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        MemoryError,
        OverflowError,
        RecursionError,
    ) as err:
        raise pickle.UnpicklingError(f"not a valid pickle ({type(err).__name__}: {err})") from None

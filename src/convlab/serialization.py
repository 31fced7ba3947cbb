"""``save`` / ``load``: checkpoints as ``.npz`` archives with JSON metadata, never pickle.

The archive holds one array per tensor or array (``a0``, ``a1``, ...) and an entry
``__convlab__`` with UTF-8 JSON that describes the saved object's structure: dicts (keys may be
strings, ints, floats, bools or ``None``), lists, tuples, strings, numbers, booleans, ``None``,
tensors and arrays. Loading reads the ``.npy`` entries itself (plain number dtypes only, never
pickle) and validates the structure, so a crafted file can at worst raise
:class:`CheckpointError`, never run code; every size it declares is checked before anything is
read (see :func:`load`). Files are written to a temporary name in the same directory, flushed
to disk and renamed over the target, so a crash never leaves a half-written checkpoint where a
good one was.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import numpy as np

from convlab import _dtype
from convlab._atomic import atomic_open
from convlab._safe_io import FormatError, NpzArchive, loads_json
from convlab._tensor import Tensor, backend_for
from convlab.backend import BackendUnavailableError

__all__ = ["save", "load", "CheckpointError", "DEFAULT_MAX_BYTES"]

_META = "__convlab__"
_FORMAT = "convlab-checkpoint"
_VERSION = 1
_MAX_DEPTH = 64
# Each level of the saved object adds at most 3 levels of JSON ({"dict": [[key, value]]}).
_MAX_JSON_DEPTH = 3 * (_MAX_DEPTH + 2) + 2
# The metadata is parsed as JSON (several times its size in Python objects): a fixed bound far
# above any real state dict (about 100 bytes per tensor: 16 MiB is over 100,000 tensors).
_MAX_META_BYTES = 16 << 20
_NPY_MAGIC = b"\x93NUMPY"

#: The smallest limit :func:`load` puts on the arrays' total uncompressed size when
#: ``max_bytes`` is not given (the file's own size is used when larger): 1 GiB.
DEFAULT_MAX_BYTES = 1 << 30


class CheckpointError(ValueError):
    """A file is not a valid convlab checkpoint (corrupted, truncated or crafted)."""


def _encode(obj: Any, arrays: dict[str, np.ndarray], depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError(f"save: objects nested deeper than {_MAX_DEPTH} levels")
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return {"str": obj}
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return {"int": str(int(obj))}
    if isinstance(obj, (float, np.floating)):
        return {"float": repr(float(obj))}
    if isinstance(obj, Tensor):
        name = f"a{len(arrays)}"
        arrays[name] = obj.numpy()
        return {
            "tensor": name,
            "device": obj._backend.name,
            "requires_grad": obj.requires_grad,
            "parameter": type(obj).__name__ == "Parameter",
        }
    if isinstance(obj, np.ndarray) or (
        hasattr(obj, "__cuda_array_interface__") and hasattr(obj, "get")
    ):
        array = obj if isinstance(obj, np.ndarray) else obj.get()
        if array.dtype.kind not in "biuf":
            raise TypeError(f"save: arrays of dtype {array.dtype} are not supported")
        name = f"a{len(arrays)}"
        arrays[name] = array
        return {"array": name}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not (key is None or isinstance(key, (str, bool, int, float, np.integer))):
                raise TypeError(
                    f"save: dict keys must be str, int, float, bool or None, got "
                    f"{type(key).__name__}"
                )
            items.append([_encode(key, arrays, depth + 1), _encode(value, arrays, depth + 1)])
        return {"dict": items, "ordered": True}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, arrays, depth + 1) for v in obj]}
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        raise TypeError(
            f"save: a whole {type(obj).__name__} cannot be saved: that would need pickle, "
            f"which convlab never uses for files it loads. Save its state instead: "
            f"convlab.save(obj.state_dict(), path), and later "
            f"obj.load_state_dict(convlab.load(path))"
        )
    raise TypeError(
        f"save: cannot save objects of type {type(obj).__name__} (supported: "
        f"dicts, lists, tuples, str, numbers, bool, None, tensors, arrays)"
    )


def _is_file_object(f: Any) -> bool:
    """A binary stream (``open(..., "wb")``, ``io.BytesIO``) rather than a path."""
    return not isinstance(f, (str, bytes, os.PathLike)) and (
        hasattr(f, "write") or hasattr(f, "read")
    )


def save(obj: Any, path: Any) -> None:
    """Write ``obj`` (e.g. a ``state_dict``) to ``path`` atomically.

    Args:
        obj: What to store: dicts, lists, tuples, strings, numbers, bool, None, tensors and
            arrays, nested.
        path: A file name, used as given (no ``.npz`` is appended), or a binary stream opened
            for writing (``open(name, "wb")``, ``io.BytesIO``), as ``torch.save`` accepts:
            the checkpoint is built in memory and written to it in one ``write`` at its
            current position.

    Raises:
        TypeError: For objects that cannot be stored without pickle.
    """
    arrays: dict[str, Any] = {}  # (arrays; Any: savez types **kwds as if one were allow_pickle)
    meta = {"format": _FORMAT, "version": _VERSION, "object": _encode(obj, arrays)}
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    if _is_file_object(path):
        if not hasattr(path, "write"):
            raise TypeError(f"path: expected a file name or a writable binary stream, got {path!r}")
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path.write(buffer.getvalue())
        return
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)


class _Decoder:
    """Rebuilds the saved object from the metadata; every check names the entry it failed on."""

    def __init__(self, archive: NpzArchive, path: str, map_location: str | None) -> None:
        self.archive, self.path, self.map_location = archive, path, map_location
        self.names = set(archive.names)
        self.used: set[str] = set()

    def fail(self, why: str) -> CheckpointError:
        return CheckpointError(f"load: {self.path!r} is not a valid convlab checkpoint: {why}")

    def metadata(self) -> dict[str, Any]:
        """The checked metadata entry: format, version and the encoded object."""
        if _META not in self.names:
            raise self.fail("the metadata entry is missing")
        try:
            raw = self.archive.read(_META, kinds="u", max_bytes=_MAX_META_BYTES)
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise FormatError(
                    f"the metadata entry must be UTF-8 bytes (a 1-D uint8 "
                    f"array), found {raw.dtype} of shape {raw.shape}"
                )
            meta = loads_json(raw.tobytes(), "the metadata", _MAX_JSON_DEPTH, _MAX_META_BYTES)
        except FormatError as err:
            raise self.fail(str(err)) from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise self.fail("the metadata does not name the convlab checkpoint format")
        version = meta.get("version")
        if type(version) is not int or version != _VERSION:
            raise self.fail(
                f"unsupported format version {version!r} (this convlab reads version {_VERSION})"
            )
        if "object" not in meta:
            raise self.fail("the metadata holds no object")
        return meta

    def array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or name not in self.names or name == _META:
            raise self.fail(f"reference to a missing array {str(name)[:80]!r}")
        if name in self.used:
            # save writes each array once: a second reference would read it again
            raise self.fail(f"array {name!r} is referenced more than once")
        self.used.add(name)
        try:
            return self.archive.read(name)
        except FormatError as err:
            raise self.fail(str(err)) from None

    def flag(self, node: dict[str, Any], key: str, default: bool) -> bool:
        value = node.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(
                f"{key!r} of tensor {str(node.get('tensor'))[:80]!r} must be true "
                f"or false, got {str(value)[:40]!r}"
            )
        return value

    def tensor(self, node: dict[str, Any]) -> Tensor:
        name = node["tensor"]
        device = self.map_location or node.get("device", "cpu")
        if not isinstance(device, str) or device not in ("cpu", "gpu"):
            raise self.fail(
                f"tensor {str(name)[:80]!r}: unknown device {str(device)[:40]!r} "
                f"(expected 'cpu' or 'gpu')"
            )
        parameter = self.flag(node, "parameter", False)
        requires_grad = self.flag(node, "requires_grad", parameter)
        array = self.array(name)
        try:
            _dtype.resolve_dtype(array.dtype, f"tensor {name!r}")
        except TypeError as err:
            raise self.fail(
                f"tensor {name!r} has dtype {array.dtype}, which convlab tensors "
                f"do not support ({err})"
            ) from None
        if (parameter or requires_grad) and not _dtype.is_floating(array.dtype):
            raise self.fail(
                f"tensor {name!r} of dtype {array.dtype} is marked as requiring "
                f"gradients, which only floating-point tensors can"
            )
        try:
            backend = backend_for(device)
        except BackendUnavailableError as err:
            raise self.fail(
                f"tensor {name!r} was saved on the GPU, which is not available "
                f"here ({err}); pass map_location='cpu' to load it on the CPU"
            ) from None
        t = Tensor._wrap(backend.asarray(array), backend)
        if parameter:
            from convlab.nn.parameter import Parameter

            return Parameter(t, requires_grad=requires_grad)
        t.requires_grad = requires_grad
        return t

    def decode(self, node: Any, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise self.fail("structure nested too deeply")
        if node is None or isinstance(node, bool):
            return node
        if not isinstance(node, dict) or not node:
            raise self.fail(f"unexpected structure entry {str(node)[:80]!r}")
        if "str" in node and isinstance(node["str"], str):
            return node["str"]
        if "int" in node and isinstance(node["int"], str):
            try:
                return int(node["int"])
            except ValueError:
                raise self.fail(f"bad int {node['int'][:40]!r}") from None
        if "float" in node and isinstance(node["float"], str):
            try:
                return float(node["float"])
            except ValueError:
                raise self.fail(f"bad float {node['float'][:40]!r}") from None
        if "tensor" in node:
            return self.tensor(node)
        if "array" in node:
            return self.array(node["array"])
        if "dict" in node and isinstance(node["dict"], list):
            out = {}
            for item in node["dict"]:
                if not isinstance(item, list) or len(item) != 2:
                    raise self.fail("malformed dict entry")
                key = self.decode(item[0], depth + 1)
                if not (key is None or isinstance(key, (str, int, float, bool))):
                    raise self.fail("unhashable dict key")
                if key in out:
                    # a saved dict has unique keys: a repeated one would silently drop a value
                    raise self.fail(f"duplicate dict key {str(key)[:40]!r}")
                out[key] = self.decode(item[1], depth + 1)
            return out
        for kind, make in (("list", list), ("tuple", tuple)):
            if kind in node and isinstance(node[kind], list):
                return make(self.decode(v, depth + 1) for v in node[kind])
        raise self.fail(f"unknown entry type {sorted(node)[:3]}")


def _byte_limit(max_bytes: int | None, size: int) -> int:
    if max_bytes is None:
        return max(size, DEFAULT_MAX_BYTES)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1:
        raise ValueError(f"max_bytes: expected a number of bytes >= 1 or None, got {max_bytes!r}")
    return int(max_bytes)


def load(
    path: Any,
    map_location: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    max_bytes: int | None = None,
) -> Any:
    """Read an object written by :func:`save`.

    Every size the file declares is checked before anything is read: each array's
    uncompressed size and their sum against ``max_bytes``, each ``.npy`` header against its
    archive entry, and the metadata's size and JSON nesting against fixed bounds.

    Args:
        path: The checkpoint file, or a binary stream opened for reading (``open(name,
            "rb")``, ``io.BytesIO``), read from its current position to its end.
        map_location: ``"cpu"`` or ``"gpu"`` (or ``"cuda"``, a :class:`convlab.device`) to
            put every tensor there; by default each goes back to the device it was saved
            from. PyTorch's other forms are understood too: a dict such as
            ``{"cuda:0": "cpu"}`` (its target device) and a function (``lambda storage, loc:
            storage``, PyTorch's idiom for "load on the CPU").
        weights_only: Accepted for PyTorch compatibility: convlab checkpoints never hold
            code (no pickle), so every load is weights-only.
        mmap: Accepted for PyTorch compatibility; arrays are read into memory.
        max_bytes: The most bytes the arrays may take once read, all together. Default: the
            file's own size or :data:`DEFAULT_MAX_BYTES`, whichever is larger (:func:`save`
            stores arrays uncompressed, so its checkpoints never need more than their size;
            the allowance covers archives compressed afterwards).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is truncated, corrupted, crafted (oversized, duplicated
            or overlapping entries, too deeply nested metadata, unsupported dtypes), not a
            convlab checkpoint, would need pickle, or holds a tensor saved on a GPU this
            machine lacks (without ``map_location``).
        ValueError: For a bad ``map_location`` or ``max_bytes``.
        convlab.BackendUnavailableError: For ``map_location="gpu"`` without a GPU.
        OSError: If the file cannot be read.
    """
    stream = None
    if _is_file_object(path):
        if not hasattr(path, "read"):
            raise TypeError(f"path: expected a file name or a readable binary stream, got {path!r}")
        stream, path = path, str(getattr(path, "name", "<stream>"))
    else:
        path = os.fspath(path)
    if callable(map_location):
        map_location = "cpu"
    elif isinstance(map_location, dict):
        targets = {str(v) for v in map_location.values()}
        if len(targets) != 1:
            raise ValueError(f"map_location: a dict must map to one device, got {sorted(targets)}")
        map_location = targets.pop()
    if map_location is not None:
        backend_for(map_location, "map_location")
        map_location = "gpu" if str(map_location).startswith(("gpu", "cuda")) else "cpu"
    if stream is not None:
        try:
            data = stream.read()
        except io.UnsupportedOperation:
            raise TypeError(
                f"path: expected a file name or a readable binary stream, got {stream!r}"
            ) from None
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"path: expected a binary stream, but reading it gave {type(data)}")
        size = len(data)
        opened: Any = io.BytesIO(data)
    else:
        if not os.path.exists(path):
            raise FileNotFoundError(f"load: no such file {path!r}")
        if not os.path.isfile(path):
            raise CheckpointError(f"load: {path!r} is not a valid convlab checkpoint: not a file")
        size = os.path.getsize(path)
        opened = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    limit = _byte_limit(max_bytes, size)
    with opened as handle:
        if handle.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise CheckpointError(
                f"load: {path!r} is not a valid convlab checkpoint: it holds "
                f"a single array, not an archive"
            )
        handle.seek(0)
        try:
            archive = NpzArchive(handle, "archive", limit)
        except FormatError as err:
            raise CheckpointError(
                f"load: {path!r} is not a valid convlab checkpoint: {err}"
            ) from None
        with archive:
            decoder = _Decoder(archive, path, map_location)
            return decoder.decode(decoder.metadata()["object"])

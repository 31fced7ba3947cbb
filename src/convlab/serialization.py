"""``save`` / ``load``: checkpoints as ``.npz`` archives with JSON metadata, never pickle.

The archive holds one array per tensor or array (``a0``, ``a1``, ...) and an entry
``__convlab__`` with UTF-8 JSON that describes the saved object's structure: dicts (keys may be
strings, ints, floats, bools or ``None``), lists, tuples, strings, numbers, booleans, ``None``,
tensors and arrays. Loading uses ``numpy.load(allow_pickle=False)`` and validates the structure,
so a crafted file can at worst raise :class:`CheckpointError`, never run code. Files are written
to a temporary name in the same directory, flushed to disk and renamed over the target, so a
crash never leaves a half-written checkpoint where a good one was.
"""
from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Optional

import numpy as np

from convlab import _dtype
from convlab._atomic import atomic_open
from convlab._tensor import Tensor, backend_for

__all__ = ["save", "load", "CheckpointError"]

_META = "__convlab__"
_FORMAT = "convlab-checkpoint"
_VERSION = 1
_MAX_DEPTH = 64


class CheckpointError(ValueError):
    """A file is not a valid convlab checkpoint (corrupted, truncated or crafted)."""


def _encode(obj: Any, arrays: dict, depth: int = 0) -> Any:
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
        return {"tensor": name, "device": obj.device, "requires_grad": obj.requires_grad,
                "parameter": type(obj).__name__ == "Parameter"}
    if isinstance(obj, np.ndarray) or (hasattr(obj, "__cuda_array_interface__")
                                       and hasattr(obj, "get")):
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
                raise TypeError(f"save: dict keys must be str, int, float, bool or None, got "
                                f"{type(key).__name__}")
            items.append([_encode(key, arrays, depth + 1), _encode(value, arrays, depth + 1)])
        return {"dict": items, "ordered": True}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, arrays, depth + 1) for v in obj]}
    raise TypeError(f"save: cannot save objects of type {type(obj).__name__} (supported: "
                    f"dicts, lists, tuples, str, numbers, bool, None, tensors, arrays)")


def save(obj: Any, path: Any) -> None:
    """Write ``obj`` (e.g. a ``state_dict``) to ``path`` atomically.

    The file name is used as given (no ``.npz`` is appended).

    Raises:
        TypeError: For objects that cannot be stored without pickle.
    """
    arrays: dict = {}
    meta = {"format": _FORMAT, "version": _VERSION, "object": _encode(obj, arrays)}
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)


class _Decoder:
    def __init__(self, archive: Any, path: str, map_location: Optional[str]) -> None:
        self.archive, self.path, self.map_location = archive, path, map_location
        self.names = set(archive.files)

    def fail(self, why: str) -> CheckpointError:
        return CheckpointError(f"load: {self.path!r} is not a valid convlab checkpoint: {why}")

    def array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or name not in self.names or name == _META:
            raise self.fail(f"reference to a missing array {name!r}")
        try:
            array = self.archive[name]
        except Exception as err:  # noqa: BLE001 - any failure here means a broken file
            raise self.fail(f"array {name!r} cannot be read ({err})") from None
        if array.dtype.kind not in "biuf":
            raise self.fail(f"array {name!r} has unsupported dtype {array.dtype}")
        return array

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
            array = self.array(node["tensor"])
            device = self.map_location or node.get("device", "cpu")
            if device not in ("cpu", "gpu"):
                raise self.fail(f"unknown device {device!r}")
            _dtype.resolve_dtype(array.dtype, "checkpoint array")
            t = Tensor._wrap(backend_for(device).asarray(array), backend_for(device))
            if node.get("parameter"):
                from convlab.nn.parameter import Parameter
                return Parameter(t, requires_grad=bool(node.get("requires_grad", True)))
            if node.get("requires_grad") and array.dtype.kind == "f":
                t.requires_grad = True
            return t
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
                out[key] = self.decode(item[1], depth + 1)
            return out
        for kind, make in (("list", list), ("tuple", tuple)):
            if kind in node and isinstance(node[kind], list):
                return make(self.decode(v, depth + 1) for v in node[kind])
        raise self.fail(f"unknown entry type {sorted(node)[:3]}")


def load(path: Any, map_location: Optional[str] = None) -> Any:
    """Read an object written by :func:`save`.

    Args:
        path: The checkpoint file.
        map_location: ``"cpu"`` or ``"gpu"`` to put every tensor there; by default each goes
            back to the device it was saved from.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is truncated, corrupted, not a convlab checkpoint, or
            would need pickle.
    """
    path = os.fspath(path)
    if map_location is not None:
        backend_for(map_location, "map_location")
        map_location = "gpu" if str(map_location).startswith(("gpu", "cuda")) else "cpu"
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - numpy raises many types for broken files
        raise CheckpointError(f"load: {path!r} is not a valid convlab checkpoint: "
                              f"cannot open it as an .npz archive ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(f"load: {path!r} is not a valid convlab checkpoint: it holds a "
                              f"single array, not an archive")
    with archive:
        decoder = _Decoder(archive, path, map_location)
        if _META not in decoder.names:
            raise decoder.fail("the metadata entry is missing")
        try:
            meta_bytes = archive[_META]
            meta = json.loads(bytes(meta_bytes.astype(np.uint8).tobytes()).decode("utf-8"))
        except (ValueError, zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as err:
            raise decoder.fail(f"the metadata cannot be read ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise decoder.fail("the metadata does not name the convlab checkpoint format")
        if meta.get("version") != _VERSION:
            raise decoder.fail(f"unsupported format version {meta.get('version')!r} "
                               f"(this convlab reads version {_VERSION})")
        return decoder.decode(meta.get("object"))



"""Reading files that may be crafted: JSON, ``.npy`` files and ``.npz`` archives within bounds.

Shared by the checkpoint reader (:mod:`convlab.serialization`) and the chart-set reader
(:mod:`convlab.data.chartset`). Every size a file declares (a zip entry's uncompressed size, a
``.npy`` header's shape and dtype) is checked against the caller's limits and against the other
declarations *before* anything is read or allocated, so a small file cannot make a reader
allocate much more than the caller allowed; JSON nesting is measured before ``json`` recurses
into it. Problems raise :class:`FormatError`, whose message names the entry and the bound; each
loader re-raises it as its own documented error type with the file's name in front.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

import numpy as np

__all__ = [
    "FormatError",
    "json_depth",
    "loads_json",
    "NpyHeader",
    "read_npy_header",
    "read_npy_data",
    "read_npy_file",
    "NpzArchive",
]

# NumPy 1.x's limit (2.x allows 64): no array convlab writes comes near it.
_MAX_NDIM = 32
# Reading a large array in pieces keeps the transient copy small (zip members have no readinto).
_CHUNK = 1 << 24
# A string literal, escapes included: removed before counting brackets, so "[[" in a ticker
# name does not count as nesting. The closing quote is optional: an unterminated string then
# runs to the end in one match, where a required quote would make the engine retry from every
# escaped quote inside it (quadratic time).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_OPEN = np.frombuffer(b"[{", np.uint8)
_CLOSE = np.frombuffer(b"]}", np.uint8)


class FormatError(ValueError):
    """A file breaks its format or a size bound (the message names the entry and the bound)."""


def json_depth(text: str) -> int:
    """The deepest bracket nesting of JSON ``text`` (strings ignored), in linear time and
    without recursion."""
    skeleton = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), np.uint8)
    step = np.isin(skeleton, _OPEN).astype(np.int8) - np.isin(skeleton, _CLOSE).astype(np.int8)
    return int(np.cumsum(step, dtype=np.int32).max(initial=0))


def loads_json(raw: bytes, what: str, max_depth: int, max_bytes: int) -> Any:
    """Parse UTF-8 JSON ``raw`` after checking its size and nesting depth.

    Raises:
        FormatError: For more than ``max_bytes`` bytes, text that is not UTF-8, nesting deeper
            than ``max_depth`` (``json`` recurses once per level and would raise
            ``RecursionError``), or invalid JSON.
    """
    if len(raw) > max_bytes:
        raise FormatError(f"{what}: {len(raw)} bytes, more than the {max_bytes} allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FormatError(f"{what}: not UTF-8 text ({err})") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise FormatError(
            f"{what}: JSON nested {depth} levels deep, more than the "
            f"{max_depth} this format ever needs"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise FormatError(f"{what}: not valid JSON ({err})") from None


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` header declares, checked: a plain number dtype and a valid shape.

    Attributes:
        dtype: The array's dtype (byte order as stored).
        shape: The array's shape.
        fortran_order: Whether the data are stored column-major.
        offset: Where the data start (bytes from the start of the ``.npy`` stream).
    """

    dtype: np.dtype
    shape: tuple
    fortran_order: bool
    offset: int

    @property
    def nbytes(self) -> int:
        """The data's size in bytes (Python ints: no overflow for any declared shape)."""
        return math.prod(self.shape) * self.dtype.itemsize


def read_npy_header(fp: IO[bytes], what: str, kinds: str = "biuf") -> NpyHeader:
    """Read and check a ``.npy`` header; ``fp`` is left at the start of the data.

    Args:
        fp: A binary stream at the start of the ``.npy`` data (a file or a zip member).
        what: How messages name the array (e.g. ``"entry 'a0'"``).
        kinds: The dtype kinds allowed (NumPy's ``dtype.kind`` letters); object and structured
            dtypes are always refused (they would need pickle or are not plain numbers).

    Raises:
        FormatError: For a bad magic number or header, an unsupported format version, a dtype
            outside ``kinds`` or a negative dimension.
    """
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fp)
        else:  # 3.0 exists only for structured dtypes with non-Latin-1 field names
            raise FormatError(
                f"{what}: .npy format version {version} is not supported (expected 1.0 or 2.0)"
            )
        offset = fp.tell()
    except FormatError:
        raise
    except (
        ValueError,
        TypeError,
        EOFError,
        SyntaxError,
        tokenize.TokenError,
        RecursionError,
        MemoryError,
        OverflowError,
    ) as err:  # NumPy's header parser tokenizes the text
        raise FormatError(f"{what}: not a valid .npy array ({err})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise FormatError(
            f"{what}: dtype {dtype} is not a plain number type (object and "
            f"structured arrays are never read)"
        )
    if dtype.kind not in kinds:
        raise FormatError(
            f"{what}: dtype {dtype} is not allowed (allowed kinds: {_kind_names(kinds)})"
        )
    if any(d < 0 for d in shape):
        raise FormatError(f"{what}: shape {shape} has a negative dimension")
    if len(shape) > _MAX_NDIM:
        raise FormatError(f"{what}: {len(shape)} dimensions, more than the {_MAX_NDIM} allowed")
    return NpyHeader(dtype, tuple(int(d) for d in shape), bool(fortran_order), offset)


def _kind_names(kinds: str) -> str:
    names = {"b": "bool", "i": "signed int", "u": "unsigned int", "f": "float"}
    return ", ".join(names.get(k, k) for k in kinds)


def read_npy_data(fp: IO[bytes], header: NpyHeader, what: str) -> np.ndarray:
    """Read the data ``header`` declares from ``fp`` into a writable array in native byte
    order; the stream must end right after them.

    Raises:
        FormatError: If the stream ends early or holds more than the header declares.
    """
    nbytes = header.nbytes
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    done = 0
    while done < nbytes:
        chunk = fp.read(min(nbytes - done, _CHUNK))
        if not chunk:
            raise FormatError(
                f"{what}: truncated: the header declares {header.shape} of "
                f"{header.dtype} ({nbytes} bytes), only {done} are there"
            )
        view[done : done + len(chunk)] = chunk
        done += len(chunk)
    if fp.read(1):  # for a zip member this read also checks the CRC
        raise FormatError(
            f"{what}: holds more data than its header declares ({header.shape} of {header.dtype})"
        )
    array = np.frombuffer(buffer, header.dtype).reshape(
        header.shape, order="F" if header.fortran_order else "C"
    )
    return to_native(array)


def to_native(array: np.ndarray) -> np.ndarray:
    """``array`` in the machine's byte order (the same values; swapped in place if needed)."""
    if array.dtype.isnative:
        return array
    return array.byteswap(inplace=True).view(array.dtype.newbyteorder("="))


def read_npy_file(
    path: Any,
    what: str,
    kinds: str,
    shape: tuple | None = None,
    mmap: bool = False,
    dtype: Any = None,
) -> np.ndarray:
    """A whole ``.npy`` file, checked against its header before anything is read.

    Args:
        path: The file.
        what: How messages name it.
        kinds: The dtype kinds allowed.
        shape: The shape it must have, if known.
        mmap: Memory-map it read-only instead of reading it.
        dtype: The dtype it must have (in either byte order), if known.

    Raises:
        FormatError: For a bad header, another dtype or shape, or a file size that is not
            exactly the header plus the data it declares (truncated, or trailing bytes).
    """
    with open(path, "rb") as fp:
        header = read_npy_header(fp, what, kinds)
        if dtype is not None and header.dtype.newbyteorder("=") != np.dtype(dtype):
            raise FormatError(
                f"{what}: expected dtype {np.dtype(dtype)}, the file holds {header.dtype}"
            )
        if shape is not None and header.shape != tuple(shape):
            raise FormatError(
                f"{what}: expected an array of shape {tuple(shape)}, the file holds {header.shape}"
            )
        size = _file_size(fp)
        if size != header.offset + header.nbytes:
            raise FormatError(
                f"{what}: {size} bytes, but its header declares {header.shape} "
                f"of {header.dtype} ({header.offset + header.nbytes} bytes; "
                f"truncated or trailing data)"
            )
        if mmap and header.nbytes and header.dtype.isnative:
            # (a foreign byte order cannot be swapped in a read-only map: it is read instead)
            return np.memmap(
                path,
                header.dtype,
                "r",
                header.offset,
                header.shape,
                "F" if header.fortran_order else "C",
            )
        return read_npy_data(fp, header, what)


def _file_size(fp: BinaryIO) -> int:
    position = fp.tell()
    size = fp.seek(0, 2)
    fp.seek(position)
    return size


# What zipfile and its decompressors raise for a crafted archive (a bad CRC, a bad deflate
# stream, an offset outside the file, an encrypted or unknown-method member, ...).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    OverflowError,
    ValueError,
    UnicodeDecodeError,
)


@contextlib.contextmanager
def _zip_errors(what: str) -> Iterator[None]:
    try:
        yield
    except FormatError:
        raise
    except _ZIP_ERRORS as err:
        raise FormatError(
            f"{what}: not a valid .npz archive ({type(err).__name__}: {err})"
        ) from None


class NpzArchive:
    """A ``.npz`` archive opened for bounded reading (use it as a context manager).

    On opening, the central directory is checked before any entry is read: every entry is a
    ``.npy`` file stored plainly or deflated, named once, not overlapping another; a stored
    entry's declared size equals its stored size; each entry's declared uncompressed size and
    their sum are at most ``max_bytes``. :meth:`read` then checks the entry's ``.npy`` header
    against that declared size before reading it.

    Args:
        fp: The archive, an open binary file (I/O errors opening it are the caller's).
        what: How messages name the archive.
        max_bytes: The most bytes all entries together may take once read.

    Raises:
        FormatError: If the archive breaks any of these rules or is not a zip file.
    """

    def __init__(self, fp: BinaryIO, what: str, max_bytes: int) -> None:
        self.what = what
        with _zip_errors(what):
            self._zip = zipfile.ZipFile(fp)
            try:
                self._entries = self._check_directory(self._zip.infolist(), max_bytes)
            except BaseException:
                self._zip.close()
                raise

    def _check_directory(self, infos: list, max_bytes: int) -> dict:
        entries: dict = {}
        total = 0
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                raise FormatError(f"{self.what}: entry {name!r} is not a .npy array")
            key = name[:-4]
            if key in entries:
                raise FormatError(
                    f"{self.what}: entry {name!r} appears more than once "
                    f"(duplicate entries are never written)"
                )
            if info.flag_bits & 0x1:
                raise FormatError(f"{self.what}: entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise FormatError(
                    f"{self.what}: entry {name!r} uses compression method "
                    f"{info.compress_type} (expected stored or deflated)"
                )
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise FormatError(
                    f"{self.what}: entry {name!r} is stored uncompressed but "
                    f"declares {info.file_size} bytes in {info.compress_size}"
                )
            total += info.file_size
            if info.file_size > max_bytes or total > max_bytes:
                raise FormatError(
                    f"{self.what}: entry {name!r} declares {info.file_size} "
                    f"bytes ({total} with the entries before it), more than "
                    f"max_bytes={max_bytes}"
                )
            entries[key] = info
        _check_no_overlap(self.what, infos)
        return entries

    @property
    def names(self) -> list:
        """The entries' names, without ``.npy``."""
        return list(self._entries)

    def read(
        self,
        name: str,
        kinds: str = "biuf",
        shape: tuple | None = None,
        max_bytes: int | None = None,
    ) -> np.ndarray:
        """Entry ``name`` as a writable array in native byte order.

        Args:
            name: The entry, without ``.npy``.
            kinds: The dtype kinds allowed.
            shape: The shape it must have, if known.
            max_bytes: The most bytes this entry's data may take (besides the archive's
                limit), checked against its header before reading.

        Raises:
            KeyError: If there is no such entry.
            FormatError: If its header does not match its declared size, ``shape``, ``kinds``
                or ``max_bytes``, or its data are corrupted.
        """
        info = self._entries[name]
        what = f"{self.what} entry {name!r}"
        with _zip_errors(what), self._zip.open(info) as fp:
            header = read_npy_header(fp, what, kinds)
            if shape is not None and header.shape != tuple(shape):
                raise FormatError(f"{what}: expected shape {tuple(shape)}, found {header.shape}")
            if max_bytes is not None and header.nbytes > max_bytes:
                raise FormatError(
                    f"{what}: {header.shape} of {header.dtype} is "
                    f"{header.nbytes} bytes, more than the {max_bytes} allowed"
                )
            if header.offset + header.nbytes != info.file_size:
                raise FormatError(
                    f"{what}: its header declares {header.shape} of "
                    f"{header.dtype} ({header.offset + header.nbytes} bytes), "
                    f"the archive declares {info.file_size}"
                )
            return read_npy_data(fp, header, what)

    def close(self) -> None:
        """Close the archive (not the file it was opened on)."""
        self._zip.close()

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _check_no_overlap(what: str, infos: list) -> None:
    """Refuse entries whose stored bytes overlap: the classic zip bomb points many directory
    entries at one compressed stream. Local headers are at least 30 bytes plus the name."""
    spans = sorted(
        (
            info.header_offset,
            info.header_offset + 30 + len(info.filename.encode("utf-8")) + info.compress_size,
            info.filename,
        )
        for info in infos
    )
    for (_, end, name), (start, _, other) in zip(spans, spans[1:]):
        if start < end:
            raise FormatError(f"{what}: entries {name!r} and {other!r} overlap (a crafted archive)")

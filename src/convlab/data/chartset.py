"""``ChartSet``: bit-packed chart images with labels, returns, tickers and dates.

Saved as a folder: ``images.npy`` (bit-packed, memory-mapped on load), ``meta.npz`` (labels,
returns, dates, ticker codes) and ``meta.json`` (geometry, ticker names, rendering settings).
No pickle anywhere. The folder is written under a temporary name and renamed into place; an
existing folder is replaced only when it is a chart set (nothing else in it) and the caller
passed ``overwrite=True``. Loading checks every field against what the format allows and
raises :class:`ChartSetError` for anything else.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab._atomic import fsync_dir, make_temp_dir
from convlab._safe_io import FormatError, NpzArchive, loads_json, read_npy_file

if TYPE_CHECKING:
    from convlab._tensor import Tensor

__all__ = ["ChartSet", "ChartDataset", "ChartSetError"]

_FORMAT = "convlab-chartset"
_VERSION = 1
#: What save writes into a chart-set folder: the only files it will ever remove.
_FILES = ("images.npy", "meta.npz", "meta.json")
#: meta.npz's arrays and the dtype kinds each may have (checked values follow).
_ARRAYS = {
    "labels": "iu",
    "returns": "fiu",
    "ticker_codes": "iu",
    "end_dates": "i",
    "label_dates": "i",
}
# meta.json holds the ticker names (tens of thousands at most, a few hundred KB) and flat
# rendering settings.
_MAX_META_BYTES = 16 << 20
_MAX_META_DEPTH = 32
# Day numbers of datetime64[D] that print and compare sanely: years 1..9999 (or NaT).
_FIRST_DAY = int(np.datetime64("0001-01-01", "D").astype(np.int64))
_LAST_DAY = int(np.datetime64("9999-12-31", "D").astype(np.int64))
_NAT = np.iinfo(np.int64).min


class ChartSetError(ValueError):
    """A chart-set folder (or one of the authors' image files) that is corrupted, crafted or
    not what the format allows; the message names the file and the field."""


class ChartSet:
    """A set of chart images (bit-packed) and what is known about each.

    Attributes:
        packed: uint8 (N, H*W/8), the images' bits, row-major, 1 = white.
        window: Trading days per image (5, 20 or 60).
        labels: int8 (N,): 1 if the forward return is > 0, 0 if not, -1 if unknown.
        returns: float64 (N,): the forward return over the horizon (NaN if unknown).
        ticker_codes: int32 (N,) indices into ``tickers``.
        tickers: Ticker names.
        end_dates: datetime64[D] (N,): each image's last day.
        label_dates: datetime64[D] (N,): the day the forward return is realised (NaT if unknown).
        info: Rendering settings.
    """

    def __init__(
        self,
        packed: np.ndarray,
        window: int,
        labels: np.ndarray,
        returns: np.ndarray,
        ticker_codes: np.ndarray,
        tickers: Sequence[str],
        end_dates: np.ndarray,
        label_dates: np.ndarray | None = None,
        info: dict[str, Any] | None = None,
        shape: tuple[int, int] | None = None,
    ) -> None:
        """Check and store the fields (nothing is cast in a way that changes a value).

        Raises:
            ValueError: For a window other than 5, 20 or 60, a shape other than the window's,
                packed images that are not uint8 (N, H*W/8), arrays of another length, labels
                outside -1..1, ticker codes that are not indices into ``tickers``, returns
                that are not numbers, ``tickers`` given as one string, or ``info`` that is not
                a dict.
        """
        geometry = _geometry()
        if (
            isinstance(window, bool)
            or not isinstance(window, (int, np.integer))
            or int(window) not in geometry
        ):
            raise ValueError(f"window: expected 5, 20 or 60 trading days, got {window!r}")
        self.window = int(window)
        self.shape = geometry[self.window]
        if shape is not None and tuple(shape) != self.shape:
            raise ValueError(
                f"shape: a {self.window}-day chart is {self.shape}, got {tuple(shape)}"
            )
        expected = self.shape[0] * self.shape[1] // 8
        if (
            getattr(packed, "dtype", None) != np.uint8
            or packed.ndim != 2
            or packed.shape[1] != expected
        ):
            raise ValueError(
                f"packed: expected uint8 of shape (N, {expected}) for "
                f"{self.shape} images, got {getattr(packed, 'dtype', None)} "
                f"{getattr(packed, 'shape', None)}"
            )
        n = len(packed)
        if isinstance(tickers, (str, bytes)):
            raise ValueError(
                f"tickers: expected a sequence of ticker names, got the single "
                f"{type(tickers).__name__} {tickers[:40]!r}"
            )
        if info is not None and not isinstance(info, dict):
            raise ValueError(f"info: expected a dict or None, got {type(info).__name__}")
        self.packed = packed
        self.tickers = [str(t) for t in tickers]
        self.labels = _checked_ints("labels", labels, n, -1, 1, np.int8)
        self.ticker_codes = _checked_ints(
            "ticker_codes", ticker_codes, n, 0, len(self.tickers) - 1, np.int32
        )
        self.returns = _checked_floats("returns", returns, n)
        self.end_dates = _checked_dates("end_dates", end_dates, n)
        self.label_dates = (
            _checked_dates("label_dates", label_dates, n)
            if label_dates is not None
            else np.full(n, np.datetime64("NaT"), "datetime64[D]")
        )
        self.info = dict(info or {})

    def __len__(self) -> int:
        return len(self.packed)

    def __repr__(self) -> str:
        span = f"{self.end_dates.min()}..{self.end_dates.max()}" if len(self) else "empty"
        return (
            f"ChartSet({len(self)} images of {self.shape[0]}x{self.shape[1]}, window "
            f"{self.window}, {len(self.tickers)} tickers, {span})"
        )

    def images(self, index: Any = slice(None)) -> np.ndarray:
        """Unpacked images (n, 1, H, W) as uint8 0/1."""
        packed = np.asarray(self.packed[index])
        single = packed.ndim == 1
        packed = packed.reshape(-1, packed.shape[-1])
        out = np.unpackbits(packed, axis=1).reshape(-1, 1, *self.shape)
        return out[0] if single else out

    def subset(self, index: Any) -> ChartSet:
        """The images selected by ``index`` (a mask, indices or a slice)."""
        return ChartSet(
            self.packed[index],
            self.window,
            self.labels[index],
            self.returns[index],
            self.ticker_codes[index],
            self.tickers,
            self.end_dates[index],
            self.label_dates[index],
            self.info,
            self.shape,
        )

    def ticker_of(self, i: int) -> str:
        """The ticker of image ``i``."""
        return self.tickers[int(self.ticker_codes[i])]

    # -- splits ---------------------------------------------------------------------------------
    def split(
        self,
        by: str = "date",
        train_end: Any = None,
        val_fraction: float = 0.3,
        seed: int | None = None,
    ) -> tuple[ChartSet, ChartSet, ChartSet]:
        """``(train, validation, test)`` split by date, as in the paper.

        Images whose label is realised on or before ``train_end`` form the training period,
        randomly divided into train and validation (``val_fraction``); images ending after
        ``train_end`` are the test set. Images in between (ending before ``train_end`` but with
        a label realised after it) are dropped, so no training label looks into the test
        period.

        Raises:
            ValueError: For ``by`` other than ``"date"``, a missing ``train_end`` or a fraction
                outside [0, 1).
        """
        if by != "date":
            raise ValueError(
                f"by: only 'date' is supported (random rows of overlapping windows "
                f"leak the future), got {by!r}"
            )
        if train_end is None:
            raise ValueError("train_end: give the last day of the training period")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in [0, 1), got {val_fraction}")
        end = np.datetime64(str(train_end)[:10], "D")
        realised = ~np.isnat(self.label_dates)
        in_train = realised & (self.label_dates <= end) & (self.labels >= 0)
        in_test = self.end_dates > end
        idx = np.flatnonzero(in_train)
        rng = np.random.default_rng(seed)
        shuffled = rng.permutation(idx)
        n_val = int(round(len(idx) * val_fraction))
        val_idx, train_idx = np.sort(shuffled[:n_val]), np.sort(shuffled[n_val:])
        return self.subset(train_idx), self.subset(val_idx), self.subset(np.flatnonzero(in_test))

    def dataset(self, binary: bool = False, labelled_only: bool = True) -> ChartDataset:
        """A dataset view yielding ``(image, label)`` tensors (see :class:`ChartDataset`)."""
        return ChartDataset(self, binary=binary, labelled_only=labelled_only)

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: Any, *, overwrite: bool = False) -> None:
        """Write the set to folder ``path`` atomically.

        The files are written into a new temporary folder beside ``path`` (with the usual
        permissions: the user's umask applies), flushed to disk, and the folder is renamed into
        place. ``path`` may be new or an empty folder. An existing chart set there is replaced
        only with ``overwrite=True``, and only once the new one is complete; then just the
        files a chart set consists of are removed.

        Args:
            path: The folder.
            overwrite: Replace a chart set already at ``path``.

        Raises:
            FileExistsError: If ``path`` is a file, a symbolic link, a folder holding anything
                but a chart set (never deleted, even with ``overwrite``), or a chart set and
                ``overwrite`` is false. Nothing is written then.
        """
        path = Path(os.fspath(path))
        _check_target(path, overwrite)  # fail before the (long) write
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(path.parent, f".{path.name}.new-")  # umask applies, not 0o700
        try:
            self._write_files(tmp)
            fsync_dir(tmp)
            _swap_into_place(tmp, path, overwrite)
        except BaseException:
            _remove_chart_folder(tmp)
            raise
        fsync_dir(path.parent)

    def _write_files(self, folder: Path) -> None:
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "window": self.window,
            "shape": list(self.shape),
            "tickers": self.tickers,
            "info": self.info,
            "count": len(self),
        }
        text = json.dumps(meta).encode("utf-8")  # fails before any file if info is not JSON
        _write_synced(
            folder / "images.npy", lambda f: np.save(f, np.ascontiguousarray(self.packed))
        )
        _write_synced(
            folder / "meta.npz",
            lambda f: np.savez(
                f,
                labels=self.labels,
                returns=self.returns,
                ticker_codes=self.ticker_codes,
                end_dates=self.end_dates.astype(np.int64),
                label_dates=self.label_dates.astype(np.int64),
            ),
        )
        _write_synced(folder / "meta.json", lambda f: f.write(text))

    @classmethod
    def load(cls, path: Any, mmap: bool = True) -> ChartSet:
        """Read a set written by :meth:`save`; images are memory-mapped unless ``mmap=False``.

        Every field is checked before use: ``meta.json`` is a JSON object of bounded size and
        nesting with the format, version 1, a window of 5, 20 or 60, that window's image shape,
        a count, a list of ticker names and a dict of settings; ``images.npy`` is uint8 of
        shape (count, H*W/8) and exactly that size; ``meta.npz`` holds count labels in -1..1,
        numeric returns, ticker codes indexing the names, and day numbers of years 1..9999 or
        NaT, each of an integer or float dtype that holds its values exactly.

        Raises:
            FileNotFoundError: If the folder or one of its files is missing.
            ChartSetError: If the files are not a valid chart set (corrupted, crafted or
                inconsistent); the message names the file and field.
        """
        path = Path(os.fspath(path))
        if not (path / "meta.json").exists():
            raise FileNotFoundError(
                f"ChartSet.load: {str(path)!r} has no meta.json (not a saved chart set)"
            )
        for name in _FILES:
            if not (path / name).exists():
                raise FileNotFoundError(
                    f"ChartSet.load: {str(path)!r} lacks {name} (an incomplete chart set)"
                )
        try:
            for name in _FILES:
                if not (path / name).is_file():
                    raise FormatError(f"{name} is not a regular file")
            meta = _read_meta(path / "meta.json")
            height, width = _geometry()[meta["window"]]
            packed = read_npy_file(
                path / "images.npy",
                "images.npy",
                "u",
                dtype=np.uint8,
                shape=(meta["count"], height * width // 8),
                mmap=mmap,
            )
            arrays = _read_arrays(path / "meta.npz", meta["count"])
            return cls(
                packed,
                meta["window"],
                arrays["labels"],
                arrays["returns"],
                arrays["ticker_codes"],
                meta["tickers"],
                arrays["end_dates"],
                arrays["label_dates"],
                meta["info"],
                tuple(meta["shape"]),
            )
        except ValueError as err:  # FormatError, and the constructor's checks
            raise ChartSetError(
                f"ChartSet.load: {str(path)!r} is not a valid chart set: {err}"
            ) from None


def _checked_ints(name: str, values: Any, n: int, lo: int, hi: int, dtype: Any) -> np.ndarray:
    """``values`` as ``dtype`` after checking they are n integers in lo..hi (no wrap-around)."""
    array = np.asarray(values)
    _check_length(name, array, n)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integers, got {array.dtype}")
    if array.size and (array.min() < lo or array.max() > hi):
        raise ValueError(
            f"{name}: expected values in {lo}..{hi}, found {int(array.min())}..{int(array.max())}"
        )
    return array.astype(dtype)


def _checked_floats(name: str, values: Any, n: int) -> np.ndarray:
    array = np.asarray(values)
    _check_length(name, array, n)
    if array.dtype.kind not in "fiu" or not np.can_cast(array.dtype, np.float64, "safe"):
        raise ValueError(f"{name}: expected numbers that float64 holds exactly, got {array.dtype}")
    return array.astype(np.float64)


def _checked_dates(name: str, values: Any, n: int) -> np.ndarray:
    array = np.asarray(values, "datetime64[D]")
    _check_length(name, array, n)
    return array


def _check_length(name: str, array: np.ndarray, n: int) -> None:
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f"{name}: expected {n} entries (1-D), got shape {array.shape}")


def _geometry() -> dict[int, tuple[int, int]]:
    """window -> (height, width): imported late, charts.py imports this module."""
    from convlab.data.charts import GEOMETRY

    return GEOMETRY


# -- reading -------------------------------------------------------------------------------------
def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field(meta: dict[str, Any], key: str, ok: Callable[[Any], bool], expected: str) -> Any:
    """``meta[key]`` after checking it; the message says what was expected and what came."""
    if key not in meta:
        raise FormatError(f"meta.json: {key!r} is missing (expected {expected})")
    value = meta[key]
    if not ok(value):
        raise FormatError(f"meta.json: {key!r} must be {expected}, found {_brief(value)}")
    return value


def _is_int(value: Any) -> bool:
    return type(value) is int  # JSON true/false are bools: not counts or windows


def _read_meta(path: Path) -> dict[str, Any]:
    """meta.json, every field checked against what the format allows."""
    geometry = _geometry()
    with open(path, "rb") as f:
        raw = f.read(_MAX_META_BYTES + 1)
    meta = loads_json(raw, "meta.json", _MAX_META_DEPTH, _MAX_META_BYTES)
    if not isinstance(meta, dict):
        raise FormatError(f"meta.json: expected a JSON object, found {type(meta).__name__}")
    _field(meta, "format", lambda v: v == _FORMAT, repr(_FORMAT))
    _field(meta, "version", lambda v: _is_int(v) and v == _VERSION, str(_VERSION))
    window = _field(
        meta, "window", lambda v: _is_int(v) and v in geometry, "5, 20 or 60 (trading days)"
    )
    _field(
        meta,
        "shape",
        lambda v: v == list(geometry[window]),
        f"{list(geometry[window])} for window {window}",
    )
    _field(meta, "count", lambda v: _is_int(v) and v >= 0, "a number of images >= 0")
    _field(
        meta,
        "tickers",
        lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v),
        "a list of ticker names (strings)",
    )
    meta.setdefault("info", None)
    _field(meta, "info", lambda v: v is None or isinstance(v, dict), "an object or null")
    return meta


def _read_arrays(path: Path, count: int) -> dict[str, np.ndarray]:
    """meta.npz's arrays, each of shape (count,), dates converted to datetime64[D]."""
    # each entry holds count values of at most 16 bytes, plus its header
    limit = len(_ARRAYS) * (16 * count + 4096)
    with open(path, "rb") as f, NpzArchive(f, "meta.npz", limit) as archive:
        missing = [name for name in _ARRAYS if name not in archive.names]
        if missing:
            raise FormatError(f"meta.npz: missing {', '.join(missing)}")
        arrays = {
            name: archive.read(name, kinds, shape=(count,)) for name, kinds in _ARRAYS.items()
        }
    for name in ("end_dates", "label_dates"):
        days = arrays[name].astype(np.int64)
        bad = (days != _NAT) & ((days < _FIRST_DAY) | (days > _LAST_DAY))
        if bad.any():
            raise FormatError(
                f"meta.npz entry {name!r}: day number {int(days[bad][0])} is "
                f"outside the years 1..9999"
            )
        arrays[name] = days.astype("datetime64[D]")
    return arrays


# -- writing -------------------------------------------------------------------------------------
def _write_synced(path: Path, write: Callable[[Any], Any]) -> None:
    """Create ``path`` (it must not exist), write it and flush it to disk."""
    with open(path, "xb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _unused_sibling(path: Path, tag: str) -> Path:
    """An unused hidden name beside ``path`` (for moving a replaced chart set aside)."""
    while True:
        candidate = path.with_name(f".{path.name}.{tag}-{secrets.token_hex(6)}")
        if not os.path.lexists(candidate):
            return candidate


def _foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` is not a chart set's (sorted); empty if it is one we wrote."""
    entries = sorted(os.listdir(folder))
    foreign = [
        e
        for e in entries
        if e not in _FILES or os.path.islink(folder / e) or not os.path.isfile(folder / e)
    ]
    if foreign or not entries:
        return foreign
    if "meta.json" not in entries:  # a chart set's file names, but nothing says it is one
        return entries
    try:
        _read_meta(folder / "meta.json")
    except (OSError, ValueError):
        return ["meta.json (not a chart set's)"]
    return []


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse to write where it would replace anything but a chart set (or without
    ``overwrite``, anything at all but an empty folder)."""
    if os.path.islink(path):
        raise FileExistsError(
            f"ChartSet.save: {str(path)!r} is a symbolic link; give the "
            f"folder itself (nothing was written)"
        )
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path):
        raise FileExistsError(
            f"ChartSet.save: {str(path)!r} exists and is not a folder (nothing was written)"
        )
    if not os.listdir(path):
        return
    foreign = _foreign_entries(path)
    if foreign:
        listed = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise FileExistsError(
            f"ChartSet.save: {str(path)!r} is not a chart set folder: it "
            f"holds {listed}; give a new or empty folder (nothing was "
            f"written or deleted)"
        )
    if not overwrite:
        raise FileExistsError(
            f"ChartSet.save: {str(path)!r} already holds a chart set; pass "
            f"overwrite=True (convlab chart render --overwrite) to replace "
            f"it"
        )


def _swap_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Rename the finished folder ``tmp`` to ``path``; a chart set there is moved aside first
    and then removed file by file."""
    _check_target(path, overwrite)  # again: the folder may have changed meanwhile
    if not os.path.lexists(path) or not os.listdir(path):
        os.replace(tmp, path)  # POSIX rename replaces an empty folder
        return
    old = _unused_sibling(path, "old")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    if not _remove_chart_folder(old):
        warnings.warn(
            f"ChartSet.save: the replaced chart set was kept in {str(old)!r}: "
            f"something other than its files appeared in it",
            RuntimeWarning,
            stacklevel=3,
        )


def _remove_chart_folder(folder: Path) -> bool:
    """Remove a chart set's files and then the folder if that left it empty (never anything
    else: no ``rmtree``). Whether the folder is gone."""
    for name in _FILES:
        try:
            os.unlink(folder / name)
        except FileNotFoundError:
            pass
        except OSError:
            return False
    try:
        os.rmdir(folder)
    except OSError:
        return False
    return True


class ChartDataset:
    """Indexable ``(image, label)`` pairs of a :class:`ChartSet` as convlab tensors.

    ``ds[i]`` gives a (1, H, W) image and a 0-d int64 label; ``ds[a:b]`` or an index array
    gives a batch (n, 1, H, W) and (n,) labels. Images are float32 0/1, or uint8 with
    ``binary=True``.
    """

    def __init__(self, charts: ChartSet, binary: bool = False, labelled_only: bool = True) -> None:
        self.charts, self.binary = charts, binary
        self.index = np.flatnonzero(charts.labels >= 0) if labelled_only else np.arange(len(charts))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: Any) -> tuple[Tensor, Tensor]:
        import convlab

        rows = self.index[item]
        images = self.charts.images(rows)
        if not self.binary:
            images = images.astype(np.float32)
        labels = self.charts.labels[rows].astype(np.int64)
        return convlab.from_numpy(np.ascontiguousarray(images)), convlab.from_numpy(
            np.asarray(labels)
        )

"""``ChartSet``: bit-packed chart images with labels, returns, tickers and dates.

Saved as a folder: ``images.npy`` (bit-packed, memory-mapped on load), ``meta.npz`` (labels,
returns, dates, ticker codes) and ``meta.json`` (geometry, ticker names, rendering settings).
No pickle anywhere; the folder is written under a temporary name and renamed into place.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["ChartSet", "ChartDataset"]

_FORMAT = "convlab-chartset"
_VERSION = 1


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

    def __init__(self, packed: np.ndarray, window: int, labels: np.ndarray,
                 returns: np.ndarray, ticker_codes: np.ndarray, tickers: Sequence[str],
                 end_dates: np.ndarray, label_dates: Optional[np.ndarray] = None,
                 info: Optional[dict] = None, shape: Optional[tuple] = None) -> None:
        from convlab.data.charts import GEOMETRY
        self.shape = tuple(shape) if shape is not None else GEOMETRY[window]
        n = len(packed)
        expected = self.shape[0] * self.shape[1] // 8
        if packed.ndim != 2 or packed.shape[1] != expected:
            raise ValueError(f"packed: expected shape (N, {expected}) for {self.shape} images, "
                             f"got {packed.shape}")
        for name, array in (("labels", labels), ("returns", returns),
                            ("ticker_codes", ticker_codes), ("end_dates", end_dates)):
            if len(array) != n:
                raise ValueError(f"{name}: expected {n} entries, got {len(array)}")
        self.packed, self.window = packed, int(window)
        self.labels, self.returns = np.asarray(labels, np.int8), np.asarray(returns, np.float64)
        self.ticker_codes = np.asarray(ticker_codes, np.int32)
        self.tickers = [str(t) for t in tickers]
        self.end_dates = np.asarray(end_dates, "datetime64[D]")
        self.label_dates = (np.asarray(label_dates, "datetime64[D]") if label_dates is not None
                            else np.full(n, np.datetime64("NaT"), "datetime64[D]"))
        self.info = dict(info or {})

    def __len__(self) -> int:
        return len(self.packed)

    def __repr__(self) -> str:
        span = (f"{self.end_dates.min()}..{self.end_dates.max()}" if len(self) else "empty")
        return (f"ChartSet({len(self)} images of {self.shape[0]}x{self.shape[1]}, window "
                f"{self.window}, {len(self.tickers)} tickers, {span})")

    def images(self, index: Any = slice(None)) -> np.ndarray:
        """Unpacked images (n, 1, H, W) as uint8 0/1."""
        packed = np.asarray(self.packed[index])
        single = packed.ndim == 1
        packed = packed.reshape(-1, packed.shape[-1])
        out = np.unpackbits(packed, axis=1).reshape(-1, 1, *self.shape)
        return out[0] if single else out

    def subset(self, index: Any) -> "ChartSet":
        """The images selected by ``index`` (a mask, indices or a slice)."""
        return ChartSet(self.packed[index], self.window, self.labels[index],
                        self.returns[index], self.ticker_codes[index], self.tickers,
                        self.end_dates[index], self.label_dates[index], self.info, self.shape)

    def ticker_of(self, i: int) -> str:
        """The ticker of image ``i``."""
        return self.tickers[int(self.ticker_codes[i])]

    # -- splits ---------------------------------------------------------------------------------
    def split(self, by: str = "date", train_end: Any = None, val_fraction: float = 0.3,
              seed: Optional[int] = None) -> tuple:
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
            raise ValueError(f"by: only 'date' is supported (random rows of overlapping windows "
                             f"leak the future), got {by!r}")
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

    def dataset(self, binary: bool = False, labelled_only: bool = True) -> "ChartDataset":
        """A dataset view yielding ``(image, label)`` tensors (see :class:`ChartDataset`)."""
        return ChartDataset(self, binary=binary, labelled_only=labelled_only)

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: Any) -> None:
        """Write the set to folder ``path`` atomically (an existing set there is replaced only
        once the new one is complete)."""
        path = Path(os.fspath(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        try:
            np.save(tmp / "images.npy", np.ascontiguousarray(self.packed))
            with open(tmp / "meta.npz", "wb") as f:
                np.savez(f, labels=self.labels, returns=self.returns,
                         ticker_codes=self.ticker_codes,
                         end_dates=self.end_dates.astype(np.int64),
                         label_dates=self.label_dates.astype(np.int64))
            meta = {"format": _FORMAT, "version": _VERSION, "window": self.window,
                    "shape": list(self.shape), "tickers": self.tickers, "info": self.info,
                    "count": len(self)}
            (tmp / "meta.json").write_text(json.dumps(meta))
            old = None
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: Any, mmap: bool = True) -> "ChartSet":
        """Read a set written by :meth:`save`; images are memory-mapped unless ``mmap=False``.

        Raises:
            FileNotFoundError: If the folder or one of its files is missing.
            ValueError: If the files are not a valid chart set (corrupted or inconsistent).
        """
        path = Path(os.fspath(path))
        if not (path / "meta.json").exists():
            raise FileNotFoundError(f"ChartSet.load: {str(path)!r} has no meta.json "
                                    f"(not a saved chart set)")
        try:
            meta = json.loads((path / "meta.json").read_text())
            if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
                raise ValueError("unknown format or version")
            packed = np.load(path / "images.npy", mmap_mode="r" if mmap else None,
                             allow_pickle=False)
            with np.load(path / "meta.npz", allow_pickle=False) as arrays:
                fields = {k: arrays[k] for k in ("labels", "returns", "ticker_codes",
                                                 "end_dates", "label_dates")}
        except FileNotFoundError:
            raise
        except Exception as err:  # noqa: BLE001 - any parse failure means a broken set
            raise ValueError(f"ChartSet.load: {str(path)!r} is not a valid chart set ({err})") \
                from None
        if packed.dtype != np.uint8 or len(packed) != meta.get("count"):
            raise ValueError(f"ChartSet.load: {str(path)!r}: images.npy does not match "
                             f"meta.json")
        codes = fields["ticker_codes"]
        if len(codes) and (codes.min() < 0 or codes.max() >= len(meta["tickers"])):
            raise ValueError(f"ChartSet.load: {str(path)!r}: ticker codes out of range")
        return cls(packed, meta["window"], fields["labels"], fields["returns"], codes,
                   meta["tickers"], fields["end_dates"].astype("datetime64[D]"),
                   fields["label_dates"].astype("datetime64[D]"), meta.get("info"),
                   tuple(meta["shape"]))


class ChartDataset:
    """Indexable ``(image, label)`` pairs of a :class:`ChartSet` as convlab tensors.

    ``ds[i]`` gives a (1, H, W) image and a 0-d int64 label; ``ds[a:b]`` or an index array
    gives a batch (n, 1, H, W) and (n,) labels. Images are float32 0/1, or uint8 with
    ``binary=True``.
    """

    def __init__(self, charts: ChartSet, binary: bool = False,
                 labelled_only: bool = True) -> None:
        self.charts, self.binary = charts, binary
        self.index = np.flatnonzero(charts.labels >= 0) if labelled_only \
            else np.arange(len(charts))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: Any) -> tuple:
        import convlab
        rows = self.index[item]
        images = self.charts.images(rows)
        if not self.binary:
            images = images.astype(np.float32)
        labels = self.charts.labels[rows].astype(np.int64)
        return convlab.from_numpy(np.ascontiguousarray(images)), \
            convlab.from_numpy(np.asarray(labels))

"""Writers of small dataset files in the official formats (for the reader tests)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def cifar_batch(rng, n: int) -> tuple:
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n)


def write_cifar_bin(root: Path, batches: dict) -> Path:
    """``cifar-10-batches-bin``: records of 1 label byte + 3072 pixel bytes."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        records = np.concatenate([labels.astype(np.uint8)[:, None], data], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    return folder


def _py2_string(raw: bytes) -> bytes:
    """A Python 2 ``str`` as cPickle writes it (SHORT_BINSTRING or BINSTRING)."""
    if len(raw) < 256:
        return b"U" + bytes([len(raw)]) + raw
    return b"T" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    return b"K" + bytes([value]) if 0 <= value < 256 else b"J" + struct.pack("<i", value)


def py2_cifar_pickle(data: np.ndarray, labels, label_key: bytes = b"labels") -> bytes:
    """The bytes Python 2's cPickle (protocol 2) writes for an official CIFAR-10 batch:
    ``{'batch_label': str, 'labels': [int], 'data': ndarray, 'filenames': [str]}``
    (CIFAR-100's name the labels ``label_key=b"fine_labels"``)."""
    n = data.shape[0]
    dtype = (
        b"cnumpy\ndtype\n"
        + _py2_string(b"u1")
        + _int(0)
        + _int(1)
        + b"\x87R"
        + b"("
        + _int(3)
        + _py2_string(b"|")
        + b"NNN"
        + _int(-1)
        + _int(-1)
        + _int(0)
        + b"tb"
    )
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + _int(0)
        + b"\x85"
        + _py2_string(b"b")
        + b"\x87R"
        + b"("
        + _int(1)
        + _int(n)
        + b"M"
        + struct.pack("<H", 3072)
        + b"\x86"
        + dtype
        + b"\x89"
        + _py2_string(data.tobytes())
        + b"tb"
    )
    label_list = b"](" + b"".join(_int(int(v)) for v in labels) + b"e"
    names = b"](" + b"".join(_py2_string(f"img_{i}.png".encode()) for i in range(n)) + b"e"
    return (
        b"\x80\x02}q\x00("
        + _py2_string(b"batch_label")
        + _py2_string(b"test batch")
        + _py2_string(label_key)
        + label_list
        + _py2_string(b"data")
        + array
        + _py2_string(b"filenames")
        + names
        + b"u."
    )


def write_cifar_py(
    root: Path,
    batches: dict,
    python2: bool = True,
    folder_name: str = "cifar-10-batches-py",
    label_key: bytes = b"labels",
) -> Path:
    """``cifar-10-batches-py``: pickled dicts, as Python 2 wrote them (or Python 3)."""
    folder = root / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        if python2:
            blob = py2_cifar_pickle(data, labels, label_key)
        else:
            blob = pickle.dumps(
                {
                    b"batch_label": b"x",
                    label_key: [int(v) for v in labels],
                    b"data": data,
                    b"filenames": [b"f"] * len(labels),
                },
                protocol=2,
            )
        (folder / name).write_bytes(blob)
    return folder


CIFAR_NAMES = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file (MNIST's format) of a uint8 array."""
    header = (
        b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    )
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, images: dict, labels: dict, gz: bool = True) -> None:
    """``train-images-idx3-ubyte[.gz]`` etc. for the splits ``"train"`` / ``"t10k"``."""
    root.mkdir(parents=True, exist_ok=True)
    for split in images:
        for kind, array, rank in (("images", images[split], 3), ("labels", labels[split], 1)):
            blob = idx_bytes(array)
            name = f"{split}-{kind}-idx{rank}-ubyte"
            if gz:
                (root / (name + ".gz")).write_bytes(gzip.compress(blob))
            else:
                (root / name).write_bytes(blob)


def write_tiny_mnist(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """A small MNIST in the official gzipped IDX files: random 28x28 digits, labels shuffled
    with every class equally often (programs that pair images of a class need two)."""
    rng = np.random.default_rng(seed)
    images = {
        s: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        for s, n in (("train", n_train), ("t10k", n_test))
    }
    labels = {s: rng.permutation(np.arange(len(images[s])) % 10).astype(np.uint8) for s in images}
    write_mnist(root, images, labels)
    return root


def price_trend_charts(n: int, window: int = 20, seed: int = 0) -> tuple:
    """``n`` chart images of random-walk prices as the price-trend papers store them: uint8
    (n, H, W) with 0 black and 255 white, and each chart's forward return (``window`` days).
    Drawn by convlab.data.render_charts; the images are only inputs, fed to both libraries."""
    import pandas as pd

    from convlab.data import render_charts

    rng = np.random.default_rng(seed)
    days = n + 2 * window + 1
    close = 50.0 * np.exp(np.cumsum(0.02 * rng.standard_normal(days)))
    open_ = close * np.exp(0.01 * rng.standard_normal(days))
    spread = np.abs(0.01 * rng.standard_normal((2, days)))
    frame = pd.DataFrame(
        {
            "ticker": "SYN",
            "date": pd.bdate_range("2001-01-02", periods=days),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread[0]),
            "low": np.minimum(open_, close) * (1 - spread[1]),
            "close": close,
            "volume": rng.integers(1_000, 100_000, days).astype(float),
        }
    )
    charts = render_charts(frame, window=window, horizon=window)
    keep = np.flatnonzero(charts.labels >= 0)[:n]
    assert len(keep) == n, f"only {len(keep)} labelled charts"
    return charts.images(keep)[:, 0] * np.uint8(255), charts.returns[keep]

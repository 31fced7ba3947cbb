"""Fuzzing every loader with crafted files: truncations, bit flips, wrong dtypes and shapes,
deep nesting, huge declared sizes, duplicate entries, decompression and reference bombs.

Each case must end in success with data that pass the format's checks, or in the loader's
documented exception type: never another exception, a crash, a hang or a large allocation.
The cases run in one child interpreter (a segfault in a C reader must not take the test run
down, and the child can be given a memory limit): it reports each case as it starts and ends,
so a crash or hang is pinned to the case that caused it. Every case is rebuilt from
``(seed, loader, index)``.

Environment:
    CONVLAB_FUZZ_CASES: Cases per loader (default 25; 1500 with CONVLAB_FUZZ_LONG=1).
    CONVLAB_FUZZ_LONG: ``1`` for the long run (minutes).
    CONVLAB_FUZZ_SEED: The seed (default 0); a failure message names it.
"""

from __future__ import annotations

import faulthandler
import gzip
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

LONG = os.environ.get("CONVLAB_FUZZ_LONG") == "1"
CASES = int(os.environ.get("CONVLAB_FUZZ_CASES") or (1500 if LONG else 25))
SEED = int(os.environ.get("CONVLAB_FUZZ_SEED") or 0)
#: A case slower than this is a finding (a quadratic or exponential path).
CASE_SECONDS = 10.0
#: What a case may allocate beyond the child's footprint after warming up every loader.
MEMORY_HEADROOM = 1536 << 20
HERE = Path(__file__).resolve().parent


# ===================================================================== mutation primitives
_INTERESTING = [
    0,
    1,
    2,
    7,
    127,
    128,
    255,
    256,
    0x7FFF,
    0xFFFF,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**40,
    2**62,
    2**63 - 1,
    2**64 - 1,
]


def pick(rng: np.random.Generator, options: list) -> Any:
    """One of ``options`` as it is (``rng.choice`` would make an array of them: bytes lose
    their trailing NULs, tuples of different lengths fail)."""
    return options[int(rng.integers(0, len(options)))]


def mutate_bytes(blob: bytes, rng: np.random.Generator) -> tuple:
    """1 to 3 random edits of ``blob``: ``(new bytes, description)``."""
    data = bytearray(blob)
    done = []
    for _ in range(int(rng.integers(1, 4))):
        kind = pick(
            rng, ["truncate", "flip", "overwrite", "insert", "delete", "duplicate", "integer"]
        )
        n = len(data)
        pos = int(rng.integers(0, n + 1))
        if kind == "truncate":
            del data[pos:]
        elif kind == "flip" and n:
            for _ in range(int(rng.integers(1, 9))):
                i = int(rng.integers(0, n))
                data[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == "overwrite" and n:
            length = int(rng.integers(1, 17))
            fill = pick(rng, [0x00, 0xFF, 0x7F, 0x80, -1])
            chunk = (
                rng.integers(0, 256, length, dtype=np.uint8).tobytes()
                if fill == -1
                else bytes([int(fill)]) * length
            )
            data[pos : pos + length] = chunk
        elif kind == "insert":
            data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 33)), dtype=np.uint8).tobytes()
        elif kind == "delete":
            del data[pos : pos + int(rng.integers(1, 65))]
        elif kind == "duplicate" and n:
            start = int(rng.integers(0, n))
            data[pos:pos] = data[start : start + int(rng.integers(1, 257))]
        elif kind == "integer" and n >= 8:
            value = int(pick(rng, _INTERESTING))
            width, order = int(pick(rng, [2, 4, 8])), pick(rng, ["<", ">"])
            fmt = order + {2: "H", 4: "I", 8: "Q"}[width]
            i = int(rng.integers(0, n - width + 1))
            data[i : i + width] = struct.pack(fmt, value % (1 << (8 * width)))
        done.append(str(kind))
    return bytes(data), "bytes:" + "+".join(done)


def hostile_json(size: int, rng: np.random.Generator) -> str:
    """JSON text that is costly to look at: deep nesting (sometimes unterminated), brackets
    inside strings, or an unterminated string of escaped quotes."""
    kind = int(rng.integers(0, 3))
    if kind == 0:
        open_, close = ("[", "]") if rng.random() < 0.5 else ('{"a": ', "}")
        tail = close * size if rng.random() < 0.7 else ""
        return open_ * size + "1" + tail
    if kind == 1:
        return '["' + "[{" * size + '"]'
    return '"' + '\\"' * size


def random_json_value(rng: np.random.Generator) -> Any:
    pool: list = [
        None,
        True,
        False,
        0,
        -1,
        1,
        5,
        7,
        20,
        60,
        2**31,
        2**63,
        -(2**63),
        1.5,
        float("nan"),
        float("inf"),
        1e308,
        "",
        "5",
        "x" * 1000,
        "T",
        [],
        {},
        [1, 2],
        [32, 15],
        [16, 30],
        ["A", "B"],
        [1],
        {"a": 1},
        [[1]] * 3,
        {"": None},
    ]
    return pool[int(rng.integers(0, len(pool)))]


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_crafted(descr: str, shape: tuple, fortran: bool, data: bytes) -> bytes:
    """A .npy file whose header says anything at all (the data need not match it)."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


_DESCRS = [
    "<u2",
    ">f4",
    ">i8",
    "<c8",
    "|b1",
    "<f2",
    "<U3",
    "|O",
    "|V8",
    "<M8[D]",
    "<m8[s]",
    "<f16",
    "|S4",
    "<i4",
    "|u1",
    "<f8",
    "<i8",
    ">u2",
    "<u8",
]


def random_array(rng: np.random.Generator, n: int) -> bytes:
    """A .npy entry of a random dtype, shape and values: real or with a lying header."""
    if rng.random() < 0.35:
        descr = _DESCRS[int(rng.integers(0, len(_DESCRS)))]
        shape = tuple(
            int(pick(rng, [0, 1, n, n + 1, 2**20, 2**40, 2**62]))
            for _ in range(int(rng.integers(0, 4)))
        )
        if rng.random() < 0.1:  # more dimensions than NumPy allows
            shape = (1,) * int(pick(rng, [33, 64, 65, 200]))
        data = rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
        return npy_crafted(descr, shape, bool(rng.random() < 0.2), data)
    dtype = pick(
        rng, ["<u2", ">f4", ">i8", "|b1", "<f2", "<i4", "|u1", "<f8", "<i8", "<u8", "|i1", "<c8"]
    )
    shape = pick(rng, [(n,), (n, 2), (n + 1,), (max(n - 1, 0),), (), (0,)])
    values = pick(rng, [0, 1, -1, 2, 300, -(2**31), 2**62, np.nan, np.inf, 1e300, 0.5, -1e300])
    with np.errstate(all="ignore"):
        array = np.full(shape, values).astype(dtype)
    return npy_bytes(array)


def zip_bytes(entries: list, compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, blob in entries:
            with archive.open(name, "w", force_zip64=True) as handle:
                handle.write(blob)
    return buffer.getvalue()


def patch_central_sizes(blob: bytes, rng: np.random.Generator) -> bytes:
    """Set one central-directory entry's declared sizes (or offset) to an interesting value."""
    data = bytearray(blob)
    records = [i for i in range(len(data)) if data.startswith(b"PK\x01\x02", i)]
    if not records:
        return blob
    at = records[int(rng.integers(0, len(records)))]
    field = int(pick(rng, [20, 24, 42]))  # compressed size, size, header offset
    struct.pack_into("<I", data, at + field, int(pick(rng, _INTERESTING)) % 2**32)
    return bytes(data)


def alias_entry(blob: bytes, rng: np.random.Generator) -> bytes:
    """Point one central-directory entry at another's stored bytes (overlapping entries)."""
    data = bytearray(blob)
    records = [i for i in range(len(data)) if data.startswith(b"PK\x01\x02", i)]
    if len(records) < 2:
        return blob
    a, b = rng.choice(len(records), 2, replace=False)
    offset = struct.unpack_from("<I", data, records[int(a)] + 42)[0]
    struct.pack_into("<I", data, records[int(b)] + 42, offset)
    return bytes(data)


_ZERO_STREAMS: dict = {}


def deflated_zeros(mib: int) -> bytes:
    """A raw-deflate zip entry of ``mib`` MiB of zero bytes inside a .npy (cached)."""
    if mib not in _ZERO_STREAMS:
        _ZERO_STREAMS[mib] = zip_bytes(
            [("a0.npy", npy_bytes(np.zeros(mib << 20, np.uint8)))], zipfile.ZIP_DEFLATED
        )
    return _ZERO_STREAMS[mib]


# ===================================================================== loaders and checks
class Loader:
    """One loader under fuzz: how to make a case, how to run it, what it may raise."""

    name = ""
    covers: tuple = ()  # the public readers this target exercises

    def setup(self, work: Path) -> None:
        """Build the valid inputs the cases mutate (once per child)."""

    def make(self, case: Path, rng: np.random.Generator) -> str:
        """Write case ``case`` (a folder); return a description."""
        raise NotImplementedError

    def run(self, case: Path) -> Any:
        raise NotImplementedError

    def documented(self) -> tuple:
        raise NotImplementedError

    def check(self, result: Any, case: Path) -> None:
        """Assert that a successful result is valid data (``case`` holds the input)."""


def _valid_chart_set(charts: Any) -> None:
    from convlab.data.charts import GEOMETRY

    n = len(charts)
    assert charts.window in GEOMETRY and charts.shape == GEOMETRY[charts.window]
    assert charts.packed.dtype == np.uint8 and charts.packed.shape == (
        n,
        charts.shape[0] * charts.shape[1] // 8,
    )
    assert charts.labels.dtype == np.int8 and set(np.unique(charts.labels)) <= {-1, 0, 1}
    assert charts.returns.dtype == np.float64 and charts.returns.shape == (n,)
    assert charts.ticker_codes.dtype == np.int32
    if n:
        assert 0 <= charts.ticker_codes.min() and charts.ticker_codes.max() < len(charts.tickers)
        assert charts.images(slice(0, 2)).shape[1:] == (1, *charts.shape)
    assert all(isinstance(t, str) for t in charts.tickers)
    assert charts.end_dates.dtype == np.dtype("datetime64[D]") and len(charts.end_dates) == n
    assert len(charts.label_dates) == n and isinstance(charts.info, dict)


def _small_frame(days: int = 40, tickers: tuple = ("AA", "NA")) -> Any:
    import pandas as pd

    rng = np.random.default_rng(7)
    frames = []
    for name in tickers:
        close = 30 * np.exp(np.cumsum(rng.normal(0, 0.02, days)))
        frames.append(
            pd.DataFrame(
                {
                    "ticker": name,
                    "date": pd.bdate_range("2021-01-04", periods=days),
                    "open": close * 1.001,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "volume": rng.integers(1, 1000, days).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


class Checkpoint(Loader):
    name = "checkpoint"
    covers = ("convlab.load",)

    def setup(self, work: Path) -> None:
        import convlab

        path = work / "base.ckpt"
        convlab.save(
            {
                "w": convlab.randn(3, 4),
                "b": convlab.zeros(4, dtype=convlab.int64),
                "step": 3,
                "name": "x",
                "nested": [1.5, None, (True,)],
                "arr": np.arange(5, dtype=np.int16),
                2: {"k": -1},
            },
            path,
        )
        self.base = path.read_bytes()
        with zipfile.ZipFile(path) as archive:
            self.entries = [(n, archive.read(n)) for n in archive.namelist()]
        self.meta = json.loads(np.load(path)["__convlab__"].tobytes())

    def make(self, case: Path, rng: np.random.Generator) -> str:
        kind = int(rng.integers(0, 9))
        entries = list(self.entries)
        if kind == 0:
            blob, what = mutate_bytes(self.base, rng)
        elif kind in (1, 2):  # the metadata: a random node replaced, or deep nesting
            meta = json.loads(json.dumps(self.meta))
            if kind == 1:
                node, key = _random_slot(meta, rng)
                node[key] = random_json_value(rng)
                text, what = json.dumps(meta), "meta:replace"
            else:
                text = json.dumps(meta).replace(
                    '{"str": "x"}', hostile_json(int(pick(rng, [100, 250, 10_000, 300_000])), rng)
                )
                what = "meta:deep"
            entries = [
                (n, b)
                if n != "__convlab__.npy"
                else (n, npy_bytes(np.frombuffer(text.encode(), np.uint8)))
                for n, b in entries
            ]
            blob = zip_bytes(entries)
        elif kind == 3:  # an array entry of another dtype / shape / lying header
            i = int(rng.integers(0, len(entries)))
            entries[i] = (entries[i][0], random_array(rng, 4))
            blob, what = zip_bytes(entries), f"array:{entries[i][0]}"
        elif kind == 4:  # duplicate entry names
            i = int(rng.integers(0, len(entries)))
            entries.insert(int(rng.integers(0, len(entries) + 1)), entries[i])
            blob, what = zip_bytes(entries), "duplicate"
        elif kind == 5:
            blob, what = patch_central_sizes(zip_bytes(entries), rng), "declared-size"
        elif kind == 6:
            blob, what = alias_entry(zip_bytes(entries), rng), "overlap"
        elif kind == 7:  # a deflated bomb referenced from several places
            mib = int(pick(rng, [1, 4, 16]))
            refs = int(rng.integers(1, 20))
            meta = {
                "format": "convlab-checkpoint",
                "version": 1,
                "object": {"list": [{"array": "a0"}] * refs},
            }
            with zipfile.ZipFile(io.BytesIO(deflated_zeros(mib))) as archive:
                bomb = archive.read("a0.npy")
            blob = zip_bytes(
                [
                    ("a0.npy", bomb),
                    (
                        "__convlab__.npy",
                        npy_bytes(np.frombuffer(json.dumps(meta).encode(), np.uint8)),
                    ),
                ],
                zipfile.ZIP_DEFLATED,
            )
            what = f"bomb:{mib}MiB x{refs}"
        else:  # not an archive at all
            blob = [
                b"",
                b"\x93NUMPY",
                npy_bytes(np.ones(3)),
                pickle.dumps([1]),
                b"PK\x05\x06" + bytes(18),
                rng.integers(0, 256, 200, np.uint8).tobytes(),
            ][int(rng.integers(0, 6))]
            what = "foreign"
        (case / "model.ckpt").write_bytes(blob)
        return what

    def run(self, case: Path) -> Any:
        import convlab

        return convlab.load(case / "model.ckpt", map_location="cpu")

    def documented(self) -> tuple:
        import convlab

        return (convlab.CheckpointError,)

    def check(self, result: Any, case: Path) -> None:
        import convlab
        from convlab import _dtype

        def walk(obj: Any, depth: int = 0) -> None:
            assert depth <= 70
            if isinstance(obj, dict):
                for k, v in obj.items():
                    assert k is None or isinstance(k, (str, int, float, bool))
                    walk(v, depth + 1)
            elif isinstance(obj, (list, tuple)):
                for v in obj:
                    walk(v, depth + 1)
            elif isinstance(obj, convlab.Tensor):
                assert _dtype.resolve_dtype(obj.dtype) is not None
            elif isinstance(obj, np.ndarray):
                assert obj.dtype.kind in "biuf" and obj.dtype.isnative
            else:
                assert obj is None or isinstance(obj, (str, int, float, bool))

        walk(result)


def _random_slot(tree: Any, rng: np.random.Generator) -> tuple:
    """A random (container, key) inside a JSON tree."""
    slots = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for k in node:
                slots.append((node, k))
                visit(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                slots.append((node, i))
                visit(node[i])

    visit(tree)
    return slots[int(rng.integers(0, len(slots)))]


class ChartSetLoader(Loader):
    name = "chartset"
    covers = ("ChartSet",)
    _FILES = ("images.npy", "meta.npz", "meta.json")

    def setup(self, work: Path) -> None:
        from convlab.data import render_charts

        charts = render_charts(_small_frame(), window=5)
        charts.save(work / "set")
        self.files = {n: (work / "set" / n).read_bytes() for n in self._FILES}
        self.meta = json.loads(self.files["meta.json"])
        self.n = len(charts)
        with np.load(work / "set" / "meta.npz") as arrays:
            self.arrays = {k: arrays[k] for k in arrays.files}

    def make(self, case: Path, rng: np.random.Generator) -> str:
        files = dict(self.files)
        kind = int(rng.integers(0, 7))
        if kind == 0:
            name = self._FILES[int(rng.integers(0, 3))]
            files[name], what = mutate_bytes(files[name], rng)
            what = f"{name}:{what}"
        elif kind == 1:
            meta = dict(self.meta)
            key = pick(rng, list(meta) + ["extra"])
            meta[str(key)] = random_json_value(rng)
            files["meta.json"], what = json.dumps(meta).encode(), f"meta.json:{key}"
        elif kind == 2:
            files["meta.json"] = hostile_json(int(pick(rng, [50, 10_000, 300_000])), rng).encode()
            what = "meta.json:deep"
        elif kind == 3:
            entries = [(k + ".npy", npy_bytes(v)) for k, v in self.arrays.items()]
            i = int(rng.integers(0, len(entries)))
            change = int(rng.integers(0, 3))
            if change == 0:
                entries[i] = (entries[i][0], random_array(rng, self.n))
            elif change == 1:
                del entries[i]
            else:
                entries.append(entries[i])
            files["meta.npz"] = zip_bytes(entries)
            what = f"meta.npz:{entries[min(i, len(entries) - 1)][0]}:{change}"
        elif kind == 4:
            files["meta.npz"] = patch_central_sizes(self.files["meta.npz"], rng)
            what = "meta.npz:declared-size"
        elif kind == 5:
            files["images.npy"] = (
                random_array(rng, self.n)
                if rng.random() < 0.7
                else npy_crafted(
                    "|u1",
                    (self.n, 60),
                    bool(rng.random() < 0.5),
                    bytes(self.n * 60 + int(rng.integers(-60, 61))),
                )
            )
            what = "images.npy:crafted"
        else:
            name = self._FILES[int(rng.integers(0, 3))]
            del files[name]
            what = f"missing:{name}"
        for name, blob in files.items():
            (case / name).write_bytes(blob)
        return what

    def run(self, case: Path) -> Any:
        from convlab.data import ChartSet

        return ChartSet.load(case, mmap=int(case.name[4:]) % 2 == 0)

    def documented(self) -> tuple:
        from convlab.data import ChartSetError

        return (ChartSetError, FileNotFoundError)

    def check(self, result: Any, case: Path) -> None:
        _valid_chart_set(result)


def _pickle_cases(rng: np.random.Generator, base: bytes) -> tuple:
    """A crafted pickle: ``(bytes, description)``."""
    kind = int(rng.integers(0, 9))
    if kind == 0:
        return mutate_bytes(base, rng)
    if kind == 1:  # shared references: 2**depth items expanded
        o: Any = []
        depth = int(rng.integers(5, 60))
        for _ in range(depth):
            o = [o, o] if rng.random() < 0.8 else {b"k": o, b"j": o}
        return pickle.dumps(
            {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"filenames": o},
            protocol=int(rng.integers(2, 6)),
        ), f"shared:{depth}"
    if kind == 2:  # deep nesting
        depth = int(pick(rng, [40, 1000, 200_000]))
        return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".", f"deep:{depth}"
    if kind == 3:  # memo slots far beyond the data
        slot = int(pick(rng, _INTERESTING)) % 2**32
        op = pick(
            rng,
            [
                b"r" + struct.pack("<I", slot),
                b"p" + str(slot).encode() + b"\n",
                b"q" + bytes([slot % 256]),
            ],
        )
        return b"\x80\x02]" + op + b".", f"memo:{slot}"
    if kind == 4:  # lengths beyond the data
        size = int(pick(rng, _INTERESTING))
        op = pick(
            rng,
            [
                b"\x8e" + struct.pack("<Q", size % 2**64),
                b"\x8d" + struct.pack("<Q", size % 2**64),
                b"\x96" + struct.pack("<Q", size % 2**64),
                b"\x95" + struct.pack("<Q", size % 2**64),
                b"T" + struct.pack("<I", size % 2**32),
                b"\x8b" + struct.pack("<I", size % 2**32),
            ],
        )
        return b"\x80\x05" + op + b"abc.", f"length:{size}"
    if kind == 5:  # globals: refused ones and abuses of allowed ones
        target = pick(
            rng,
            [
                b"os\nsystem\n",
                b"builtins\neval\n",
                b"__builtin__\nbytes\n",
                b"_codecs\nencode\n",
                b"numpy\ndtype\n",
                b"numpy\nndarray\n",
                b"numpy.core.multiarray\nscalar\n",
                b"numpy.core.multiarray\n_reconstruct\n",
                b"numpy.core.numeric\n_frombuffer\n",
            ],
        )
        args = pick(
            rng,
            [
                b")",
                b"J\x00\x00\x00\x40\x85",
                b"X\x01\x00\x00\x00x\x85",
                b"X\x02\x00\x00\x00u1\x85",
                b"X\x01\x00\x00\x00OK\x00\x86",
                b"NN}\x87",
                b"]\x85",
            ],
        )
        tail = pick(rng, [b"R.", b"R}b.", b"N}X\x01\x00\x00\x00xK\x01s\x86b.", b"."])
        return b"\x80\x02c" + target + args + tail, f"global:{target!r}"
    if kind == 6:  # arrays of every dtype, with edits
        dtype = pick(rng, ["u1", ">i4", "<f8", "c8", "U3", "M8[D]", "b1", "f2", "V4"])
        array = np.zeros(int(rng.integers(0, 5)), dtype)
        blob = pickle.dumps({b"data": array}, protocol=int(rng.integers(2, 6)))
        return mutate_bytes(blob, rng)[0] if rng.random() < 0.5 else blob, f"array:{dtype}"
    if kind == 7:  # cycles
        cyclic: list = []
        cyclic.append({b"self": cyclic})
        return pickle.dumps(cyclic, protocol=2), "cycle"
    # random opcode soup
    import pickletools

    codes = [op for op in pickletools.opcodes]
    parts = [b"\x80\x04"]
    for _ in range(int(rng.integers(1, 40))):
        op = codes[int(rng.integers(0, len(codes)))]
        parts.append(op.code.encode("latin1"))
        parts.append(rng.integers(0, 256, int(rng.integers(0, 9)), dtype=np.uint8).tobytes())
    return b"".join(parts) + b".", "soup"


class PlainPickle(Loader):
    name = "plain_pickle"
    covers = ("load_plain_pickle",)

    def setup(self, work: Path) -> None:
        from data_files import py2_cifar_pickle

        rng = np.random.default_rng(3)
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        self.bases = [py2_cifar_pickle(data, [1, 2, 3])] + [
            pickle.dumps(
                {
                    b"data": data,
                    b"labels": [1, 2, 3],
                    b"batch_label": b"",
                    b"filenames": [b"a", b"b", b"c"],
                },
                protocol=p,
            )
            for p in (2, 3, 4, 5)
        ]

    def make(self, case: Path, rng: np.random.Generator) -> str:
        blob, what = _pickle_cases(rng, self.bases[int(rng.integers(0, len(self.bases)))])
        (case / "blob.pkl").write_bytes(blob)
        return what

    def run(self, case: Path) -> Any:
        from convlab.data import load_plain_pickle

        return load_plain_pickle((case / "blob.pkl").read_bytes())

    def documented(self) -> tuple:
        return (pickle.UnpicklingError,)

    def check(self, result: Any, case: Path) -> None:
        seen: set = set()

        def walk(obj: Any, depth: int) -> None:
            assert depth <= 40
            if id(obj) in seen:
                return
            if isinstance(obj, (dict, list, tuple)):
                seen.add(id(obj))
                items = [x for kv in obj.items() for x in kv] if isinstance(obj, dict) else obj
                for v in items:
                    walk(v, depth + 1)
            elif isinstance(obj, np.ndarray):
                assert obj.dtype.kind in "biuf"
            else:
                assert obj is None or isinstance(obj, (str, bytes, bytearray, int, float, complex))

        walk(result, 0)


class _Cifar:
    """What both CIFAR-10 formats share: the loader, its error and the checks of its data."""

    def run(self, case: Path) -> Any:
        from convlab.data import CIFAR10

        return CIFAR10(case, train=False)

    def documented(self) -> tuple:
        from convlab.data import DatasetFormatError

        return (DatasetFormatError,)

    def check(self, result: Any, case: Path) -> None:
        _valid_image_dataset(result, (3, 32, 32))


class CifarPy(_Cifar, PlainPickle):
    name = "cifar_py"
    covers = ("CIFAR10",)

    def make(self, case: Path, rng: np.random.Generator) -> str:
        blob, what = _pickle_cases(rng, self.bases[int(rng.integers(0, len(self.bases)))])
        (case / "cifar-10-batches-py").mkdir()
        (case / "cifar-10-batches-py" / "test_batch").write_bytes(blob)
        return what


def _valid_image_dataset(ds: Any, shape: tuple) -> None:
    assert ds.data.dtype == np.uint8 and ds.data.shape[1:] == shape
    assert ds.targets.dtype == np.int64 and len(ds.targets) == len(ds.data)
    assert ds.targets.size == 0 or (ds.targets.min() >= 0 and ds.targets.max() <= 9)
    if len(ds):
        ds[0]


class CifarBin(_Cifar, Loader):
    name = "cifar_bin"
    covers = ("CIFAR10",)

    def setup(self, work: Path) -> None:
        rng = np.random.default_rng(4)
        records = np.concatenate(
            [rng.integers(0, 10, (3, 1)), rng.integers(0, 256, (3, 3072))], axis=1
        ).astype(np.uint8)
        self.base = records.tobytes()

    def make(self, case: Path, rng: np.random.Generator) -> str:
        blob, what = mutate_bytes(self.base, rng)
        (case / "cifar-10-batches-bin").mkdir()
        (case / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(blob)
        return what


class Mnist(Loader):
    name = "mnist"
    covers = ("MNIST", "read_idx")

    def setup(self, work: Path) -> None:
        from data_files import idx_bytes

        rng = np.random.default_rng(5)
        self.images = idx_bytes(rng.integers(0, 256, (4, 28, 28)))
        self.labels = idx_bytes(rng.integers(0, 10, 4))

    def make(self, case: Path, rng: np.random.Generator) -> str:
        files = {"train-images-idx3-ubyte": self.images, "train-labels-idx1-ubyte": self.labels}
        target = "train-images-idx3-ubyte" if rng.random() < 0.5 else "train-labels-idx1-ubyte"
        kind = int(rng.integers(0, 5))
        if kind == 0:
            files[target], what = mutate_bytes(files[target], rng)
        elif kind == 1:  # the header: type code, rank, dimensions
            header = bytearray(files[target])
            header[2] = int(pick(rng, [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x0A, 0xFF]))
            if rng.random() < 0.5:
                header[3] = int(rng.integers(0, 256))
            at = 4 + 4 * int(rng.integers(0, max(1, min(header[3], 3))))
            if at + 4 <= len(header):
                struct.pack_into(">I", header, at, int(pick(rng, _INTERESTING)) % 2**32)
            files[target], what = bytes(header), "header"
        elif kind == 2:  # values out of range in a wider type
            code, dtype = [(0x0D, ">f4"), (0x0C, ">i4"), (0x09, ">i1"), (0x0E, ">f8")][
                int(rng.integers(0, 4))
            ]
            value = pick(rng, [-1, 256, 10, np.nan, 3, 0.5])
            shape = (4, 28, 28) if "images" in target else (4,)
            with np.errstate(all="ignore"):
                array = np.full(shape, value).astype(dtype)
            files[target] = (
                b"\x00\x00"
                + bytes([code, len(shape)])
                + struct.pack(">" + "I" * len(shape), *shape)
                + array.tobytes()
            )
            what = f"values:{dtype}:{value}"
        elif kind == 3:  # gzip: bombs, truncation, several members, trailing bytes
            body = files[target]
            variant = int(rng.integers(0, 4))
            if variant == 0:
                body = body + bytes(int(pick(rng, [1, 64, 8 << 20, 64 << 20])))
            packed = gzip.compress(body, compresslevel=1)
            if variant == 1:
                packed = packed[: int(rng.integers(0, len(packed)))]
            elif variant == 2:
                packed = gzip.compress(body[:10]) + gzip.compress(body[10:])
            elif variant == 3:
                packed += rng.integers(0, 256, int(rng.integers(1, 20)), np.uint8).tobytes()
            del files[target]
            files[target + ".gz"], what = packed, f"gzip:{variant}"
        else:  # gzip, then byte edits of the compressed stream
            packed, what = mutate_bytes(gzip.compress(files[target]), rng)
            del files[target]
            files[target + ".gz"] = packed
        for name, blob in files.items():
            (case / name).write_bytes(blob)
        return f"{target}:{what}"

    def run(self, case: Path) -> Any:
        from convlab.data import MNIST

        return MNIST(case)

    def documented(self) -> tuple:
        from convlab.data import DatasetFormatError

        return (DatasetFormatError,)

    def check(self, result: Any, case: Path) -> None:
        assert result.data.dtype == np.uint8 and result.data.ndim == 4
        assert result.data.shape[1] == 1
        assert result.targets.dtype == np.int64 and len(result.targets) == len(result.data)
        assert result.targets.size == 0 or (result.targets.min() >= 0 and result.targets.max() <= 9)


_CSV_TOKENS = [
    "NA",
    "",
    ",",
    "\n",
    '"',
    "nan",
    "inf",
    "-1",
    "0",
    "1e309",
    "2020-13-45",
    "\x00",
    "\r",
    "\ufeff",
    "9" * 400,
    "NULL",
    " ",
    "2021-01-04",
    "#N/A",
    "None",
    "Adj Close",
    "symbol",
    "Date",
    ";",
    "\t",
    "True",
]


def _valid_ohlcv(frame: Any) -> None:
    from convlab.data import COLUMNS

    assert list(frame.columns) == COLUMNS
    assert not frame["ticker"].isna().any()
    assert (frame["ticker"].astype(str).str.strip() != "").all()
    assert not frame["date"].isna().any()
    for _, group in frame.groupby("ticker"):
        dates = group["date"].to_numpy()
        assert (np.diff(dates) > np.timedelta64(0)).all()
    for col in ("open", "high", "low", "close", "volume"):
        assert frame[col].dtype == np.float64
        values = frame[col].to_numpy()
        assert (np.isnan(values) | (values > 0)).all()


class OhlcvCsv(Loader):
    name = "ohlcv_csv"
    covers = ("load_ohlcv",)

    def setup(self, work: Path) -> None:
        self.base = _small_frame(12).to_csv(index=False)

    def make(self, case: Path, rng: np.random.Generator) -> str:
        text = self.base
        if rng.random() < 0.6:
            done = []
            for _ in range(int(rng.integers(1, 6))):
                token = _CSV_TOKENS[int(rng.integers(0, len(_CSV_TOKENS)))]
                pos = int(rng.integers(0, len(text) + 1))
                cut = int(rng.integers(0, 4))
                text = text[:pos] + token + text[pos + cut :]
                done.append(repr(token))
            blob, what = text.encode("utf-8", "surrogatepass"), "text:" + ",".join(done)
        else:
            blob, what = mutate_bytes(text.encode(), rng)
        (case / "prices.csv").write_bytes(blob)
        return what

    def run(self, case: Path) -> Any:
        from convlab.data import load_ohlcv

        return load_ohlcv(case / "prices.csv", sort=int(case.name[4:]) % 2 == 0)

    def documented(self) -> tuple:
        from convlab.data import OHLCVError

        return (OHLCVError,)

    def check(self, result: Any, case: Path) -> None:
        import pandas as pd

        _valid_ohlcv(result)
        try:  # every row of the file is in the result: none dropped (e.g. the ticker "NA")
            rows = len(pd.read_csv(case / "prices.csv", dtype=str, keep_default_na=False))
        except Exception:  # noqa: BLE001 - no oracle for a file pandas reads only one way
            return
        assert len(result) == rows, f"{rows} rows in the file, {len(result)} loaded"


class OhlcvParquet(Loader):
    name = "ohlcv_parquet"
    covers = ("load_ohlcv",)

    def setup(self, work: Path) -> None:
        self.frame = _small_frame(12)
        buffer = io.BytesIO()
        self.frame.to_parquet(buffer)
        self.base = buffer.getvalue()

    def make(self, case: Path, rng: np.random.Generator) -> str:
        if rng.random() < 0.5:
            blob, what = mutate_bytes(self.base, rng)
        else:
            frame = self.frame.copy()
            column = str(pick(rng, list(frame.columns)))
            row = int(rng.integers(0, len(frame)))
            value = pick(rng, [None, "", "NA", "x", -1.0, np.nan, 0.0])
            frame[column] = frame[column].astype(object)
            frame.loc[row, column] = value
            buffer = io.BytesIO()
            try:
                frame.to_parquet(buffer)
            except Exception:  # noqa: BLE001 - a mix pyarrow cannot store: store it as text
                frame[column] = frame[column].astype(str)
                frame.to_parquet(buffer)
            blob, what = buffer.getvalue(), f"value:{column}={value!r}"
        (case / "prices.parquet").write_bytes(blob)
        return what

    def run(self, case: Path) -> Any:
        from convlab.data import load_ohlcv

        return load_ohlcv(case / "prices.parquet")

    def documented(self) -> tuple:
        from convlab.data import OHLCVError

        return (OHLCVError,)

    def check(self, result: Any, case: Path) -> None:
        import pandas as pd

        _valid_ohlcv(result)
        rows = len(pd.read_parquet(case / "prices.parquet"))
        assert len(result) == rows, f"{rows} rows in the file, {len(result)} loaded"


class AuthorsImages(Loader):
    """``read_jkx_images``: the authors' raw images and their feather labels."""

    name = "jkx"
    covers = ("read_jkx_images",)

    def setup(self, work: Path) -> None:
        import pandas as pd

        rng = np.random.default_rng(6)
        self.n = 4
        self.images = (rng.integers(0, 2, self.n * 32 * 15) * 255).astype(np.uint8).tobytes()
        self.table = pd.DataFrame(
            {
                "Date": pd.bdate_range("2020-01-06", periods=self.n),
                "StockID": ["A", "B", "A", "C"],
                "Ret_5d": rng.normal(0, 0.1, self.n),
            }
        )
        buffer = io.BytesIO()
        self.table.to_feather(buffer)
        self.labels = buffer.getvalue()

    def make(self, case: Path, rng: np.random.Generator) -> str:
        images, labels = self.images, self.labels
        kind = int(rng.integers(0, 3))
        if kind == 0:
            images, what = mutate_bytes(images, rng)
        elif kind == 1:
            labels, what = mutate_bytes(labels, rng)
        else:
            table = self.table.copy()
            column = str(pick(rng, list(table.columns) + ["drop"]))
            if column == "drop":
                table = table.drop(columns=str(pick(rng, list(table.columns))))
            else:
                table[column] = table[column].astype(object)
                table.loc[int(rng.integers(0, self.n)), column] = pick(
                    rng, [None, "", "x", "2020-99-99", -1.0, np.nan]
                )
                if column != "Ret_5d":
                    table[column] = table[column].astype(str)
            if rng.random() < 0.3:
                table = table.iloc[: int(rng.integers(0, self.n))]
            buffer = io.BytesIO()
            try:
                table.to_feather(buffer)
            except Exception:  # noqa: BLE001 - a mix pyarrow cannot store: store it as text
                table = table.astype(str)
                buffer = io.BytesIO()
                table.to_feather(buffer)
            labels, what = buffer.getvalue(), f"table:{column}"
        (case / "5d_week_images.dat").write_bytes(images)
        (case / "labels.feather").write_bytes(labels)
        return what

    def run(self, case: Path) -> Any:
        from convlab.data import read_jkx_images

        return read_jkx_images(case / "5d_week_images.dat", case / "labels.feather")

    def documented(self) -> tuple:
        from convlab.data import ChartSetError

        return (ChartSetError,)

    def check(self, result: Any, case: Path) -> None:
        _valid_chart_set(result)


LOADERS: dict = {
    cls.name: cls
    for cls in (
        Checkpoint,
        ChartSetLoader,
        PlainPickle,
        CifarPy,
        CifarBin,
        Mnist,
        OhlcvCsv,
        OhlcvParquet,
        AuthorsImages,
    )
}


# ========================================================================= the child process
def _vm_size() -> int:
    with open("/proc/self/status") as f:
        return int([line for line in f if line.startswith("VmSize")][0].split()[1]) << 10


def _limit_memory() -> None:
    """Cap the address space at the current footprint plus the headroom (Linux)."""
    try:
        import resource

        limit = _vm_size() + MEMORY_HEADROOM
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (ImportError, OSError, IndexError, ValueError):  # pragma: no cover - not Linux
        pass


def child_main(names: list, cases: int, seed: int, work: str) -> None:
    """Run the cases and print one JSON line as each starts and ends (read by the parent)."""
    import warnings

    warnings.simplefilter("ignore")
    sys.setrecursionlimit(3000)
    work_path = Path(work)
    loaders = []
    for name in names:
        index = list(LOADERS).index(name)  # the case seeds do not depend on ``names``
        loader = LOADERS[name]()
        folder = work_path / name
        folder.mkdir(parents=True, exist_ok=True)
        loader.setup(folder)
        warm = folder / "warm"
        warm.mkdir()
        try:  # warm up (imports, allocator arenas) before the memory limit
            loader.make(warm, np.random.default_rng([seed, index, 10**9]))
            loader.run(warm)
        except Exception:  # noqa: BLE001 - only warming up
            pass
        loaders.append((index, loader, folder))
    _limit_memory()
    for index, loader, folder in loaders:
        for i in range(cases):
            case = folder / f"case{i}"
            case.mkdir()
            rng = np.random.default_rng([seed, index, i])
            what = loader.make(case, rng)
            print(json.dumps({"start": loader.name, "case": i, "what": what}), flush=True)
            faulthandler.dump_traceback_later(CASE_SECONDS * 6, exit=True)
            begin = time.perf_counter()
            try:
                result = loader.run(case)
            except loader.documented():
                outcome, detail = "documented", ""
            except BaseException as err:  # noqa: BLE001 - what the fuzz looks for
                outcome = "bad"
                detail = "".join(traceback.format_exception(type(err), err, err.__traceback__))
            else:
                try:
                    loader.check(result, case)
                    outcome, detail = "ok", ""
                except BaseException as err:  # noqa: BLE001
                    outcome = "invalid"
                    detail = "".join(traceback.format_exception(type(err), err, err.__traceback__))
                del result
            seconds = time.perf_counter() - begin
            faulthandler.cancel_dump_traceback_later()
            if outcome in ("ok", "documented") and seconds > CASE_SECONDS:
                outcome, detail = "slow", f"{seconds:.1f} s"
            print(
                json.dumps(
                    {
                        "end": loader.name,
                        "case": i,
                        "outcome": outcome,
                        "seconds": round(seconds, 4),
                        "detail": detail[-3000:],
                    }
                ),
                flush=True,
            )
            if outcome in ("ok", "documented"):
                shutil.rmtree(case, ignore_errors=True)


# ========================================================================= the parent (pytest)
def run_child(names: list, cases: int, seed: int, work: Path, timeout: float) -> dict:
    """Run the child; per loader the outcomes and findings (with how to rebuild each case)."""
    code = (
        f"import sys; sys.path[:0] = [{str(HERE)!r}]; import test_fuzz_loaders as f; "
        f"f.child_main({names!r}, {cases}, {seed}, {str(work)!r})"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=str(HERE),
        )
        stdout, stderr, returncode = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as err:
        stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else (err.stderr or "")
        returncode = None
    report: dict = {name: {"outcomes": {}, "findings": [], "seconds": 0.0} for name in names}
    started = None
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if "start" in event:
            started = event
        elif "end" in event:
            entry = report[event["end"]]
            entry["outcomes"][event["outcome"]] = entry["outcomes"].get(event["outcome"], 0) + 1
            entry["seconds"] += event["seconds"]
            if event["outcome"] not in ("ok", "documented"):
                entry["findings"].append({**event, "what": started and started["what"]})
            started = None
    if started is not None or returncode not in (0,):
        where = started or {"start": names[0], "case": None, "what": None}
        hung = returncode is None or "Timeout (" in stderr  # faulthandler's watchdog
        kind = (
            "hang" if hung else f"crash (exit status {returncode})" if started else "child failed"
        )
        report.setdefault(where["start"], {"outcomes": {}, "findings": [], "seconds": 0.0})
        report[where["start"]]["findings"].append(
            {
                "case": where["case"],
                "what": where["what"],
                "outcome": kind,
                "detail": stderr[-3000:],
            }
        )
    return report


def _describe(name: str, finding: dict, work: Path) -> str:
    folder = work / name / f"case{finding['case']}"
    return (
        f"{name} case {finding['case']} ({finding['what']}): {finding['outcome']}\n"
        f"  rebuild: CONVLAB_FUZZ_SEED={SEED}; the input is in {folder}\n"
        f"{finding.get('detail', '')}"
    )


@pytest.fixture(scope="module")
def fuzz_report(tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    timeout = 60 + CASES * len(LOADERS) * (2.0 if LONG else 1.0)
    start = time.perf_counter()
    report = run_child(list(LOADERS), CASES, SEED, work, timeout)
    report["_meta"] = {"work": work, "seconds": time.perf_counter() - start}
    if LONG or os.environ.get("CONVLAB_FUZZ_CASES"):
        summary = {
            k: {
                "outcomes": v["outcomes"],
                "findings": len(v["findings"]),
                "seconds": round(v["seconds"], 2),
            }
            for k, v in report.items()
            if k != "_meta"
        }
        print(
            f"\nfuzz: seed {SEED}, {CASES} cases per loader, "
            f"{report['_meta']['seconds']:.1f} s: {json.dumps(summary, indent=1)}"
        )
    return report


@pytest.mark.parametrize("name", list(LOADERS))
def test_loader_survives_crafted_files(fuzz_report, name):
    entry = fuzz_report[name]
    work = fuzz_report["_meta"]["work"]
    ran = sum(entry["outcomes"].values())
    if entry["findings"]:
        pytest.fail(
            f"{len(entry['findings'])} of {ran} crafted inputs escaped "
            f"{name}'s documented errors:\n"
            + "\n".join(_describe(name, f, work) for f in entry["findings"][:5])
        )
    assert ran == CASES, f"only {ran} of {CASES} cases ran"


def test_every_loader_in_data_is_fuzzed():
    """A new public loader in convlab.data (a ``load*`` / ``read*`` function or a dataset
    class reading files) needs a fuzz target here."""
    import convlab.data as data

    readers = {
        n
        for n in data.__all__
        if n.startswith(("load", "read")) or n in ("CIFAR10", "MNIST", "ChartSet")
    } - {"load_default_ohlcv"}  # bundled data, no file
    covered = {name for loader in LOADERS.values() for name in loader.covers}
    assert readers <= covered, f"not fuzzed: {sorted(readers - covered)}"


if __name__ == "__main__":  # pragma: no cover - the long run by hand
    os.environ.setdefault("CONVLAB_FUZZ_LONG", "1")
    sys.exit(pytest.main([__file__, "-q", "-s"]))

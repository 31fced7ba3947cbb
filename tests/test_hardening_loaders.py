"""Regression tests for the loaders' hardening (fuzzing campaign): chart-set folders that hold a
user's files, shared-reference and decompression bombs, data silently changed on load, and
crafted files that escaped as the wrong exception type.

Each test reproduces one reported input or a sibling of it; tests/test_fuzz_loaders.py throws
generated files at the same loaders.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import stat
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import convlab
from convlab import data
from convlab.data import DatasetFormatError, UnsafePickleError, load_plain_pickle, read_idx

pd = pytest.importorskip("pandas")


# ------------------------------------------------------------------------------------ helpers
def small_chart_set(n_days: int = 40, window: int = 5) -> data.ChartSet:
    days = pd.bdate_range("2020-01-06", periods=n_days)
    close = 50 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.02, n_days)))
    frame = pd.DataFrame(
        {
            "ticker": "T",
            "date": days,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 1000.0,
        }
    )
    charts = data.render_charts(frame, window=window)
    assert len(charts) > 5
    return charts


def rewrite_meta_json(folder, **changes) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    for key, value in changes.items():
        if value is _DELETE:
            del meta[key]
        else:
            meta[key] = value
    (folder / "meta.json").write_text(json.dumps(meta))


def rewrite_meta_npz(folder, **changes) -> None:
    with np.load(folder / "meta.npz") as arrays:
        fields = {k: arrays[k] for k in arrays.files}
    fields.update(changes)
    with open(folder / "meta.npz", "wb") as f:
        np.savez(f, **fields)


_DELETE = object()


def checkpoint_meta(obj) -> np.ndarray:
    text = json.dumps({"format": "convlab-checkpoint", "version": 1, "object": obj})
    return np.frombuffer(text.encode(), np.uint8)


def write_npz(path, **arrays) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def run_isolated(code: str, timeout: float = 60.0) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line, returned with the child's
    peak RSS in MiB while it ran (``peak_mib``; 0 where Linux's counters are missing). A hang
    becomes a test failure, not a stuck suite."""
    # the peak is reset first: a forked child starts with its parent's high-water mark
    wrapper = (
        textwrap.dedent("""
        try:
            with open("/proc/self/clear_refs", "w") as _f:
                _f.write("5")
        except OSError:
            pass
    """)
        + textwrap.dedent(code)
        + textwrap.dedent("""
        try:
            with open("/proc/self/status") as _f:
                _hwm = [l for l in _f if l.startswith("VmHWM")][0].split()[1]
        except (OSError, IndexError):
            _hwm = "0"
        print("PEAK", int(_hwm) // 1024)
    """)
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the loader did not finish within {timeout} s")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-2])
    result["peak_mib"] = int(lines[-1].split()[1])
    return result


# ======================================================================= A: ChartSet.save
def test_chart_set_save_never_deletes_a_folder_of_user_files(tmp_path):
    charts = small_chart_set()
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not a chart set") as err:
            charts.save(folder, overwrite=overwrite)
        assert str(folder) in str(err.value)
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "a temporary folder is left"


def test_chart_set_save_replaces_a_chart_set_only_when_asked(tmp_path):
    first, second = small_chart_set(40), small_chart_set(60)
    folder = tmp_path / "set"
    first.save(folder)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        second.save(folder)
    assert len(data.ChartSet.load(folder)) == len(first)
    second.save(folder, overwrite=True)
    assert len(data.ChartSet.load(folder)) == len(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"], "a temporary folder is left"


def test_chart_set_save_keeps_a_user_file_put_into_a_chart_set(tmp_path):
    charts = small_chart_set()
    folder = tmp_path / "set"
    charts.save(folder)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        charts.save(folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"


def test_chart_set_save_refuses_a_file_or_link_in_the_way(tmp_path):
    charts = small_chart_set()
    (tmp_path / "file").write_text("user data")
    with pytest.raises(FileExistsError, match="not a folder"):
        charts.save(tmp_path / "file", overwrite=True)
    assert (tmp_path / "file").read_text() == "user data"
    charts.save(tmp_path / "real")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(FileExistsError, match="symbolic link"):
        charts.save(tmp_path / "link", overwrite=True)


def test_chart_set_save_into_an_empty_folder_needs_no_overwrite(tmp_path):
    charts = small_chart_set()
    (tmp_path / "empty").mkdir()
    charts.save(tmp_path / "empty")
    assert len(data.ChartSet.load(tmp_path / "empty")) == len(charts)


def test_failed_replacement_keeps_the_old_chart_set(tmp_path, monkeypatch):
    first = small_chart_set(40)
    folder = tmp_path / "set"
    first.save(folder)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        small_chart_set(60).save(folder, overwrite=True)
    monkeypatch.undo()
    assert len(data.ChartSet.load(folder)) == len(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_a_failed_swap_puts_the_old_chart_set_back(tmp_path, monkeypatch):
    first = small_chart_set(40)
    folder = tmp_path / "set"
    first.save(folder)
    real_replace, failed = os.replace, []

    def replace(src, dst):
        # the new set's rename into place fails once; the rollback's rename must work
        if os.fspath(dst) == os.fspath(folder) and not failed:
            failed.append(src)
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        small_chart_set(60).save(folder, overwrite=True)
    monkeypatch.undo()
    assert failed, "the swap was never attempted"
    assert len(data.ChartSet.load(folder)) == len(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_chart_set_folder_and_files_follow_the_umask(tmp_path):
    charts = small_chart_set()
    before = os.umask(0o022)
    try:
        charts.save(tmp_path / "set")
    finally:
        os.umask(before)
    assert stat.S_IMODE(os.stat(tmp_path / "set").st_mode) == 0o755
    for name in ("images.npy", "meta.npz", "meta.json"):
        assert stat.S_IMODE(os.stat(tmp_path / "set" / name).st_mode) == 0o644


# ==================================================================== B: bombs and bounds
def test_shared_reference_bomb_is_refused_quickly():
    """``o = [o, o]`` 30 deep: 3 KB of pickle, 2**30 list items when expanded."""
    result = run_isolated(
        """
        import json, pickle, time
        from convlab.data import load_plain_pickle, UnsafePickleError
        o = []
        for _ in range(30):
            o = [o, o]
        blob = pickle.dumps({b"data": b"x", b"labels": o}, protocol=2)
        start = time.perf_counter()
        try:
            load_plain_pickle(blob)
            outcome = "loaded"
        except UnsafePickleError as err:
            outcome = "refused: " + str(err)
        print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - start}))
    """,
        timeout=30,
    )
    assert result["outcome"].startswith("refused") and "items" in result["outcome"]
    assert result["seconds"] < 5  # linear: milliseconds; the old expansion took minutes


def test_shared_references_are_rebuilt_once_and_stay_shared():
    o = []
    for _ in range(30):
        o = [o, o]
    got = load_plain_pickle(pickle.dumps(o, protocol=2), max_items=2**40)
    assert got[0] is got[1] and got[0][0] is got[1][1]


def test_cifar_batch_with_a_shared_reference_bomb_is_a_format_error(tmp_path):
    from data_files import write_cifar_py

    rng = np.random.default_rng(0)
    folder = write_cifar_py(
        tmp_path,
        {"test_batch": (rng.integers(0, 256, (2, 3072), dtype=np.uint8), np.array([1, 2]))},
    )
    o = []
    for _ in range(40):
        o = [o, o]
    blob = pickle.dumps(
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2], b"filenames": o}, protocol=2
    )
    (folder / "test_batch").write_bytes(blob)
    result = run_isolated(
        f"""
        import json
        from convlab.data import CIFAR10, DatasetFormatError
        try:
            CIFAR10({str(tmp_path)!r}, train=False)
            outcome = "loaded"
        except DatasetFormatError as err:
            outcome = "refused: " + str(err)
        print(json.dumps({{"outcome": outcome}}))
    """,
        timeout=30,
    )
    assert result["outcome"].startswith("refused")


def test_cyclic_and_deeply_nested_pickles_are_refused_not_recursion_errors():
    cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(UnsafePickleError, match="contains itself"):
        load_plain_pickle(pickle.dumps(cyclic, protocol=2))
    depth = 100_000  # lists pushed, then each appended to the one below it
    blob = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    with pytest.raises(UnsafePickleError, match="nested"):
        load_plain_pickle(blob)


def test_huge_memo_index_does_not_allocate():
    """``LONG_BINPUT 2**25``: a 10-byte pickle made the unpickler allocate a 512 MiB memo."""
    result = run_isolated("""
        import json, struct
        from convlab.data import load_plain_pickle
        import pickle
        blob = b"\\x80\\x02]r" + struct.pack("<I", 2 ** 25) + b"."
        try:
            load_plain_pickle(blob)
            outcome = "loaded"
        except pickle.UnpicklingError as err:
            outcome = type(err).__name__ + ": " + str(err)
        print(json.dumps({"outcome": outcome}))
    """)
    assert result["outcome"].startswith("UnsafePickleError"), result
    assert result["peak_mib"] < 400, result


def test_protocol_2_empty_bytes_are_plain_data():
    """Python 3 pickles ``b""`` in protocol 2 as a call of ``bytes()`` (no arguments)."""
    assert load_plain_pickle(pickle.dumps({b"k": b""}, protocol=2)) == {b"k": b""}
    with pytest.raises(UnsafePickleError, match="bytes"):
        load_plain_pickle(b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x40\x85R.")


def test_a_pickle_cannot_change_the_reader_for_later_files():
    """``BUILD`` on an allowed global set attributes on the reader's own functions: here the
    default encoding of the ``_codecs.encode`` stand-in, which later files then relied on."""
    build = (
        b"\x80\x02c_codecs\nencode\nN}X\x0c\x00\x00\x00__defaults__X\x06\x00\x00\x00"
        b"latin1\x85s\x86b."
    )
    with pytest.raises(UnsafePickleError):
        load_plain_pickle(build)
    one_argument = b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00\xc3\xa9\x85R."
    with pytest.raises(UnsafePickleError, match="latin-1"):
        load_plain_pickle(one_argument)


def test_cifar_labels_must_be_ints_not_bools(tmp_path):
    from data_files import write_cifar_py

    folder = write_cifar_py(
        tmp_path, {"test_batch": (np.zeros((2, 3072), np.uint8), np.array([1, 2]))}, python2=False
    )
    blob = pickle.dumps(
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [True, False]}, protocol=2
    )
    (folder / "test_batch").write_bytes(blob)
    with pytest.raises(DatasetFormatError, match="labels"):
        data.CIFAR10(tmp_path, train=False)


def _deflated_npz(path, entries: dict) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in entries.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asarray(array), allow_pickle=False)


def test_checkpoint_over_max_bytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.npz"
    _deflated_npz(
        path,
        {
            "a0": np.zeros(4 * 2**20, np.uint8),  # 4 MiB -> ~4 KB
            "__convlab__": checkpoint_meta({"array": "a0"}),
        },
    )
    assert os.path.getsize(path) < 100_000
    with pytest.raises(convlab.CheckpointError, match="max_bytes"):
        convlab.load(path, max_bytes=2**20)
    assert convlab.load(path, max_bytes=8 * 2**20).shape == (4 * 2**20,)


def test_checkpoint_entry_whose_declared_size_lies_is_refused(tmp_path):
    path = tmp_path / "lie.npz"
    write_npz(
        path, a0=np.arange(10, dtype=np.float32), __convlab__=checkpoint_meta({"array": "a0"})
    )
    blob = bytearray(path.read_bytes())
    # the central directory entry of a0.npy: set its uncompressed size to 2**31
    at = blob.rfind(b"PK\x01\x02", 0, blob.rfind(b"a0.npy"))
    struct.pack_into("<I", blob, at + 24, 2**31)
    path.write_bytes(bytes(blob))
    with pytest.raises(convlab.CheckpointError, match="a0"):
        convlab.load(path)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_checkpoint_duplicate_entries_and_references_are_refused(tmp_path):
    path = tmp_path / "dup.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for array in (np.zeros(3, np.float32), np.ones(3, np.float32)):
            with archive.open("a0.npy", "w") as handle:
                np.lib.format.write_array(handle, array)
        with archive.open("__convlab__.npy", "w") as handle:
            np.lib.format.write_array(handle, checkpoint_meta({"array": "a0"}))
    with pytest.raises(convlab.CheckpointError, match="duplicate"):
        convlab.load(path)
    write_npz(
        path,
        a0=np.zeros(3, np.float32),
        __convlab__=checkpoint_meta({"list": [{"array": "a0"}] * 20}),
    )
    with pytest.raises(convlab.CheckpointError, match="more than once"):
        convlab.load(path)


def test_idx_gzip_bomb_is_not_inflated_past_the_header(tmp_path):
    """A gzipped IDX whose header declares 2 labels but whose stream inflates to 256 MiB."""
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    body = b"\x00\x00\x08\x01" + struct.pack(">I", 2) + bytes(256 * 2**20)
    path.write_bytes(gzip.compress(body, compresslevel=9))
    result = run_isolated(f"""
        import json
        from convlab.data import read_idx, DatasetFormatError
        try:
            read_idx({str(path)!r})
            outcome = "loaded"
        except DatasetFormatError as err:
            outcome = "refused: " + str(err)
        print(json.dumps({{"outcome": outcome}}))
    """)
    assert result["outcome"].startswith("refused"), result
    assert result["peak_mib"] < 200, result


def test_idx_gzip_with_zero_padding_or_two_members_reads_as_gzip_does(tmp_path):
    body = b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([1, 2, 3])
    for name, raw in (
        ("padded", gzip.compress(body) + bytes(10)),
        ("members", gzip.compress(body[:6]) + gzip.compress(body[6:])),
    ):
        path = tmp_path / f"{name}-idx1-ubyte.gz"
        path.write_bytes(raw)
        assert gzip.decompress(raw) == body
        np.testing.assert_array_equal(read_idx(path), [1, 2, 3])


def test_idx_header_whose_size_overflows_int64_is_a_format_error(tmp_path):
    path = tmp_path / "x-idx4-ubyte"
    path.write_bytes(b"\x00\x00\x08\x04" + struct.pack(">IIII", *[2**16] * 4))  # 2**64 bytes
    with pytest.raises(DatasetFormatError, match="header says"):
        read_idx(path)


# ================================================================ C: data changed on load
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("labels", lambda n: np.full(n, 300, np.int64), "labels"),
        ("labels", lambda n: np.full(n, 0.5), "labels"),
        ("ticker_codes", lambda n: np.full(n, np.nan), "ticker_codes"),
        ("ticker_codes", lambda n: np.full(n, 3, np.int64), "ticker_codes"),
        ("returns", lambda n: np.array(["a"] * n), "returns"),
        ("end_dates", lambda n: np.full(n, 2**62, np.int64), "end_dates"),
        ("label_dates", lambda n: np.zeros(n + 1, np.int64), "label_dates"),
        ("labels", lambda n: np.zeros((n, 2), np.int8), "labels"),
    ],
    ids=[
        "label-300",
        "label-float",
        "code-nan",
        "code-range",
        "returns-text",
        "date-range",
        "dates-length",
        "labels-2d",
    ],
)
def test_chart_set_arrays_are_validated_on_load(tmp_path, field, value, message):
    charts = small_chart_set()
    charts.save(tmp_path / "s")
    rewrite_meta_npz(tmp_path / "s", **{field: value(len(charts))})
    with pytest.raises(data.ChartSetError, match=message) as err:
        data.ChartSet.load(tmp_path / "s")
    assert str(tmp_path / "s") in str(err.value)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"window": 7}, r"window.*5, 20 or 60"),
        ({"window": "5"}, "window"),
        ({"shape": [16, 30]}, "shape"),
        ({"tickers": "T"}, "tickers"),
        ({"tickers": [1]}, "tickers"),
        ({"tickers": _DELETE}, "tickers"),
        ({"version": True}, "version"),
        ({"count": 3.0}, "count"),
        ({"info": [1, 2]}, "info"),
        ({"format": _DELETE}, "format"),
    ],
    ids=[
        "window-7",
        "window-text",
        "shape",
        "tickers-text",
        "tickers-int",
        "tickers-missing",
        "version-bool",
        "count-float",
        "info-list",
        "format-missing",
    ],
)
def test_chart_set_meta_json_fields_are_validated(tmp_path, changes, message):
    small_chart_set().save(tmp_path / "s")
    rewrite_meta_json(tmp_path / "s", **changes)
    with pytest.raises(data.ChartSetError, match=message):
        data.ChartSet.load(tmp_path / "s")


def test_chart_set_meta_json_that_is_not_an_object_or_too_deep(tmp_path):
    small_chart_set().save(tmp_path / "s")
    for text in ("[1]", "[" * 100_000 + "]" * 100_000, '{"a": ' * 50_000):
        (tmp_path / "s" / "meta.json").write_text(text)
        with pytest.raises(data.ChartSetError, match="meta.json"):
            data.ChartSet.load(tmp_path / "s")


def test_json_nesting_check_is_linear_for_unterminated_strings(tmp_path):
    """Found in review: the depth scan removed string literals with a regex that, for an
    unterminated string full of escaped quotes, retried at every quote (quadratic)."""
    small_chart_set().save(tmp_path / "s")
    (tmp_path / "s" / "meta.json").write_text('"' + '\\"' * 400_000)
    result = run_isolated(
        f"""
        import json, time
        from convlab.data import ChartSet, ChartSetError
        start = time.perf_counter()
        try:
            ChartSet.load({str(tmp_path / "s")!r})
            outcome = "loaded"
        except ChartSetError as err:
            outcome = "refused: " + str(err)[:200]
        print(json.dumps({{"outcome": outcome, "seconds": time.perf_counter() - start}}))
    """,
        timeout=30,
    )
    assert result["outcome"].startswith("refused") and result["seconds"] < 2, result


def test_chart_set_images_must_be_what_save_writes(tmp_path):
    charts = small_chart_set()
    charts.save(tmp_path / "s")
    for bad in (
        np.zeros((len(charts), 60), np.int16),
        np.zeros((len(charts), 61), np.uint8),
        np.zeros(len(charts) * 60, np.uint8),
    ):
        np.save(tmp_path / "s" / "images.npy", bad)
        with pytest.raises(data.ChartSetError, match="images.npy"):
            data.ChartSet.load(tmp_path / "s")
    np.save(tmp_path / "s" / "images.npy", np.zeros((len(charts), 60), np.uint8))
    with open(tmp_path / "s" / "images.npy", "ab") as f:
        f.write(b"trailing")
    with pytest.raises(data.ChartSetError, match="images.npy"):
        data.ChartSet.load(tmp_path / "s")


def _npy_with_header(text: str, data: bytes) -> bytes:
    header = text.encode("latin1") + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def test_npy_header_numpy_cannot_tokenize_is_a_format_error(tmp_path):
    """Found by the fuzz run: an unbalanced bracket in the header made NumPy's parser raise
    ``tokenize.TokenError`` (neither ValueError nor SyntaxError)."""
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 60, }"
    charts = small_chart_set()
    charts.save(tmp_path / "s")
    (tmp_path / "s" / "images.npy").write_bytes(_npy_with_header(header, bytes(60)))
    with pytest.raises(data.ChartSetError, match="images.npy"):
        data.ChartSet.load(tmp_path / "s")
    with zipfile.ZipFile(tmp_path / "c.npz", "w") as archive:
        archive.writestr("a0.npy", _npy_with_header(header, bytes(60)))
        with archive.open("__convlab__.npy", "w") as handle:
            np.lib.format.write_array(handle, checkpoint_meta({"array": "a0"}))
    with pytest.raises(convlab.CheckpointError, match="a0"):
        convlab.load(tmp_path / "c.npz")


def test_chart_set_constructor_refuses_what_it_used_to_cast():
    charts = small_chart_set()
    n = len(charts)
    args = dict(
        packed=charts.packed,
        window=5,
        labels=charts.labels,
        returns=charts.returns,
        ticker_codes=charts.ticker_codes,
        tickers=charts.tickers,
        end_dates=charts.end_dates,
    )
    for change, message in (
        ({"labels": np.full(n, 300)}, "labels"),
        ({"ticker_codes": np.full(n, np.nan)}, "ticker_codes"),
        ({"tickers": "T"}, "tickers"),
        ({"window": 7}, "window"),
        ({"packed": charts.packed.astype(np.int16)}, "packed"),
    ):
        with pytest.raises(ValueError, match=message):
            data.ChartSet(**{**args, **change})
    with pytest.raises(ValueError, match="shape"):
        data.ChartSet(**args, shape=(16, 30))
    with pytest.raises(ValueError, match="label_dates"):
        data.ChartSet(**args, label_dates=charts.label_dates[:-1])


def _write_idx(path, array, code, dtype) -> None:
    header = (
        b"\x00\x00" + bytes([code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    )
    path.write_bytes(header + np.asarray(array).astype(dtype).tobytes())


def _mnist(tmp_path, images, image_code, image_dtype, labels, label_code, label_dtype):
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, image_code, image_dtype)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, label_code, label_dtype)
    return data.MNIST(tmp_path)


@pytest.mark.parametrize(
    "images, code, dtype",
    [
        (np.full((2, 28, 28), -1.0), 0x0D, ">f4"),
        (np.full((2, 28, 28), np.nan), 0x0D, ">f4"),
        (np.full((2, 28, 28), -1), 0x0C, ">i4"),
        (np.full((2, 28, 28), 256), 0x0B, ">i2"),
    ],
    ids=["float-negative", "float-nan", "int32-negative", "int16-256"],
)
def test_mnist_images_are_not_cast_into_garbage(tmp_path, images, code, dtype):
    with pytest.raises(DatasetFormatError, match="images"):
        _mnist(tmp_path, images, code, dtype, np.array([1, 2]), 0x08, ">u1")


def test_mnist_integer_images_in_range_are_read(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    ds = _mnist(tmp_path, images, 0x0C, ">i4", np.array([1, 2]), 0x08, ">u1")
    assert ds.data.dtype == np.uint8
    np.testing.assert_array_equal(ds.data[:, 0], images)


@pytest.mark.parametrize(
    "labels, code, dtype",
    [
        (np.array([200, 1]), 0x08, ">u1"),
        (np.array([-1, 1]), 0x09, ">i1"),
        (np.array([np.nan, 1]), 0x0D, ">f4"),
        (np.array([1.0, 2.0]), 0x0E, ">f8"),
    ],
    ids=["200", "minus-1", "nan", "float"],
)
def test_mnist_labels_must_be_class_indices(tmp_path, labels, code, dtype):
    with pytest.raises(DatasetFormatError, match="labels"):
        _mnist(tmp_path, np.zeros((2, 28, 28)), 0x08, ">u1", labels, code, dtype)


def test_load_ohlcv_keeps_the_ticker_na(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(
        "ticker,date,open,high,low,close,volume\n"
        "NA,2020-01-02,1,2,1,2,5\nNA,2020-01-03,1,2,1,2,NA\n"
        "AB,2020-01-02,1,2,1,2,5\n"
    )
    tidy = data.load_ohlcv(path)
    assert sorted(tidy["ticker"].unique()) == ["AB", "NA"]
    assert len(tidy) == 3
    assert np.isnan(tidy.loc[tidy["ticker"] == "NA", "volume"].iloc[1])  # "NA" price: missing


def test_load_ohlcv_empty_ticker_or_date_is_an_error_naming_the_row(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(
        "ticker,date,open,high,low,close,volume\nAB,2020-01-02,1,2,1,2,5\n,2020-01-03,1,2,1,2,5\n"
    )
    with pytest.raises(data.OHLCVError, match=r"ticker.*row 1"):
        data.load_ohlcv(path)
    path.write_text(
        "ticker,date,open,high,low,close,volume\nAB,2020-01-02,1,2,1,2,5\nAB,,1,2,1,2,5\n"
    )
    with pytest.raises(data.OHLCVError, match=r"date.*row 1"):
        data.load_ohlcv(path)
    frame = pd.DataFrame(
        {
            "ticker": ["A", None],
            "date": ["2020-01-02", "2020-01-03"],
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
            "volume": 1.0,
        }
    )
    with pytest.raises(data.OHLCVError, match=r"ticker.*row 1"):
        data.load_ohlcv(frame)
    frame.to_parquet(tmp_path / "long.parquet")
    with pytest.raises(data.OHLCVError, match=r"ticker.*row 1"):
        data.load_ohlcv(tmp_path / "long.parquet")


def test_load_ohlcv_columns_that_normalise_to_one_name_are_an_error(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("date,open,high,low,close,Close,volume\n2020-01-02,1,2,1,2,2,5\n")
    with pytest.raises(data.OHLCVError, match=r"'close'.*'Close'"):
        data.load_ohlcv(path)


def test_load_ohlcv_infinite_prices_are_missing_not_infinite():
    yahoo = pd.DataFrame(
        {
            "Date": ["2020-01-02", "2020-01-03"],
            "Open": [1.0, 1.0],
            "High": [2.0, 2.0],
            "Low": [1.0, 1.0],
            "Close": [0.0, 2.0],
            "Adj Close": [2.0, 1.0],
            "Volume": [5.0, float("inf")],
        }
    )
    tidy = data.load_ohlcv(yahoo, ticker="Y")  # close 0: the adjustment factor is inf
    values = tidy[["open", "high", "low", "close", "volume"]].to_numpy()
    assert not np.isinf(values).any()
    assert np.isnan(tidy["open"][0]) and np.isnan(tidy["volume"][1])


def test_load_ohlcv_row_with_an_extra_field_is_an_error_not_a_shift(tmp_path):
    """Found by the fuzz run: when the first data row has one field more than the header,
    pandas makes the first column the index and every value moves one column left."""
    path = tmp_path / "shifted.csv"
    path.write_text(
        "ticker,date,open,high,low,close,volume\n"
        "AA,2021-01-04,1,2,1,2,5,9\nAA,2021-01-05,1,2,1,2,5\n"
    )
    with pytest.raises(data.OHLCVError, match="shifted.csv"):
        data.load_ohlcv(path)


def test_load_ohlcv_row_numbers_do_not_depend_on_the_frame_index():
    frame = pd.DataFrame(
        {
            "date": ["2020-01-03", "2020-01-02"],
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
            "volume": 1.0,
        },
        index=["x", "y"],
    )
    with pytest.raises(data.OHLCVError, match="unsorted dates.*row 1"):
        data.load_ohlcv(frame, ticker="T")
    frame.index = [np.nan, 3.0]
    with pytest.raises(data.OHLCVError, match="row 1"):
        data.load_ohlcv(frame.assign(date=["2020-01-02", "2020-01-02"]), ticker="T")


# ========================================================== D: the documented error types
def test_checkpoint_with_deeply_nested_json_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "deep.npz"
    for text in (b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 100_000):
        write_npz(path, __convlab__=np.frombuffer(text, np.uint8))
        with pytest.raises(convlab.CheckpointError, match="nested"):
            convlab.load(path)


def test_checkpoint_tensor_of_an_unsupported_dtype_names_entry_and_dtypes(tmp_path):
    path = tmp_path / "u16.npz"
    write_npz(path, a0=np.arange(3, dtype=np.uint16), __convlab__=checkpoint_meta({"tensor": "a0"}))
    with pytest.raises(convlab.CheckpointError, match=r"'a0'.*uint16.*float16"):
        convlab.load(path)


def test_checkpoint_plain_arrays_of_any_number_dtype_round_trip(tmp_path):
    arrays = {
        "u16": np.arange(3, dtype=np.uint16),
        "f16": np.ones(2, np.float16),
        "big": np.arange(4, dtype=">i8"),
        "u64": np.array([2**63], np.uint64),
    }
    convlab.save(arrays, tmp_path / "a.ckpt")
    back = convlab.load(tmp_path / "a.ckpt")
    for key, value in arrays.items():
        assert back[key].dtype == value.dtype.newbyteorder("=")
        np.testing.assert_array_equal(back[key], value)


def test_checkpoint_big_endian_tensor_is_read_in_native_order(tmp_path):
    path = tmp_path / "be.npz"
    write_npz(
        path,
        a0=np.arange(6, dtype=">f4").reshape(2, 3),
        __convlab__=checkpoint_meta({"tensor": "a0"}),
    )
    t = convlab.load(path)
    assert t.dtype == convlab.float32
    np.testing.assert_array_equal(t.numpy(), np.arange(6, dtype=np.float32).reshape(2, 3))


def test_checkpoint_crafted_tensor_flags_are_checkpoint_errors(tmp_path):
    path = tmp_path / "flags.npz"
    for node, message in (
        ({"tensor": "a0", "parameter": True}, "floating"),
        ({"tensor": "a0", "requires_grad": True}, "floating"),
        ({"tensor": "a0", "requires_grad": [1]}, "requires_grad"),
        ({"tensor": "a0", "device": 3}, "device"),
    ):
        write_npz(path, a0=np.arange(3, dtype=np.int32), __convlab__=checkpoint_meta(node))
        with pytest.raises(convlab.CheckpointError, match=message):
            convlab.load(path)


@pytest.mark.skipif(convlab.get_backend("gpu").is_available(), reason="a GPU is available")
def test_checkpoint_saved_on_gpu_without_a_gpu_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "gpu.npz"
    write_npz(
        path,
        a0=np.zeros(3, np.float32),
        __convlab__=checkpoint_meta({"tensor": "a0", "device": "gpu"}),
    )
    with pytest.raises(convlab.CheckpointError, match="map_location='cpu'"):
        convlab.load(path)
    assert convlab.load(path, map_location="cpu").device == "cpu"


def test_checkpoint_metadata_must_be_utf8_bytes_and_keys_unique(tmp_path):
    path = tmp_path / "m.npz"
    write_npz(path, __convlab__=checkpoint_meta(None).astype(np.float32))
    with pytest.raises(convlab.CheckpointError, match="metadata"):
        convlab.load(path)
    write_npz(
        path,
        __convlab__=checkpoint_meta({"dict": [[{"str": "a"}, None], [{"str": "a"}, {"int": "1"}]]}),
    )
    with pytest.raises(convlab.CheckpointError, match="duplicate"):
        convlab.load(path)


def test_chart_set_missing_fields_are_chart_set_errors_not_key_errors(tmp_path):
    charts = small_chart_set()
    charts.save(tmp_path / "s")
    with np.load(tmp_path / "s" / "meta.npz") as arrays:
        fields = {k: arrays[k] for k in arrays.files if k != "returns"}
    with open(tmp_path / "s" / "meta.npz", "wb") as f:
        np.savez(f, **fields)
    with pytest.raises(data.ChartSetError, match="returns"):
        data.ChartSet.load(tmp_path / "s")
    assert issubclass(data.ChartSetError, ValueError)


def test_authors_image_file_values_and_labels_are_validated(tmp_path):
    path = tmp_path / "5d_week_images.dat"
    (np.arange(32 * 15 * 2) % 7).astype(np.uint8).tofile(path)  # not 0 / 255
    with pytest.raises(data.ChartSetError, match="0 or 255"):
        data.read_jkx_images(path)
    (np.zeros(32 * 15 * 2, np.uint8)).tofile(path)
    (tmp_path / "labels.feather").write_bytes(b"garbage")
    with pytest.raises(data.ChartSetError, match="labels.feather"):
        data.read_jkx_images(path, tmp_path / "labels.feather")

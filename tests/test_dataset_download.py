"""``download=True`` for MNIST, FashionMNIST and CIFAR10, against a local HTTP server.

The server (127.0.0.1, a free port) serves generated files in the official formats; the
datasets' mirror lists and checksums are pointed at it. Checked: files arrive, are verified
and read back equal to what was served; files already there cause no request; a bad
checksum, a truncated transfer, an oversized or hostile archive and an unreachable mirror
each give a clear error and leave nothing behind; files we did not write are never touched.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from convlab.data.vision import (
    CIFAR10,
    CIFAR100,
    MNIST,
    DatasetDownloadError,
    DatasetFormatError,
    DatasetNotFoundError,
    FashionMNIST,
)
from data_files import CIFAR_NAMES, cifar_batch, idx_bytes, py2_cifar_pickle


class _Server:
    """Serves ``files`` (URL path -> bytes); ``truncate`` paths announce more than they send."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in outer.truncate else body)

            def log_message(self, *args) -> None:  # keep the test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # A short poll keeps shutdown() quick (it waits for the loop's next turn).
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just released)."""
    s = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = s.server_address[1]
    s.server_close()
    return f"http://127.0.0.1:{port}/"


def _md5(blob: bytes) -> str:
    return hashlib.md5(blob).hexdigest()


def _tree(root: Path) -> list[str]:
    """Every path below ``root`` (hidden temporary files included)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---------------------------------------------------------------- MNIST
@pytest.fixture
def mnist_files():
    rng = np.random.default_rng(0)
    images = {
        s: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for s, n in (("train", 7), ("t10k", 3))
    }
    labels = {s: rng.integers(0, 10, len(images[s]), dtype=np.uint8) for s in images}
    blobs = {}
    for split in images:
        blobs[f"{split}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images[split]))
        blobs[f"{split}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels[split]))
    return images, labels, blobs


def _serve_mnist(monkeypatch, server, blobs, cls=MNIST, folder="m", mirrors=None):
    for name, blob in blobs.items():
        server.files[f"/{folder}/{name}"] = blob
    resources = [(name, _md5(blob)) for name, blob in blobs.items()]
    monkeypatch.setattr(cls, "mirrors", mirrors or [f"{server.url}/{folder}/"])
    monkeypatch.setattr(cls, "resources", resources)


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_mnist_download_reads_back_what_was_served(monkeypatch, server, mnist_files, tmp_path, cls):
    images, labels, blobs = mnist_files
    _serve_mnist(monkeypatch, server, blobs, cls)
    train = cls(tmp_path, train=True, download=True)
    raw = tmp_path / cls.__name__ / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(blobs)  # no temporary files
    assert all((raw / n).read_bytes() == b for n, b in blobs.items())
    np.testing.assert_array_equal(train.data[:, 0], images["train"])
    np.testing.assert_array_equal(train.targets, labels["train"])
    test = cls(tmp_path, train=False)  # all four files came, as torchvision downloads them
    np.testing.assert_array_equal(test.data[:, 0], images["t10k"])
    assert len(server.requests) == 4


def test_mnist_present_files_make_no_request(monkeypatch, mnist_files, tmp_path):
    images, _, blobs = mnist_files
    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)
    monkeypatch.setattr(MNIST, "mirrors", [_closed_port_url()])  # any request would fail
    ds = MNIST(tmp_path, download=True)
    np.testing.assert_array_equal(ds.data[:, 0], images["train"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(blobs)


def test_mnist_present_files_in_torchvision_layout_make_no_request(
    monkeypatch, server, mnist_files, tmp_path
):
    _, _, blobs = mnist_files
    _serve_mnist(monkeypatch, server, blobs)
    MNIST(tmp_path, download=True)
    assert len(server.requests) == 4
    MNIST(tmp_path, download=True)
    MNIST(tmp_path, train=False, download=True)
    assert len(server.requests) == 4


def test_mnist_bad_checksum_leaves_nothing(monkeypatch, server, mnist_files, tmp_path):
    _, _, blobs = mnist_files
    _serve_mnist(monkeypatch, server, blobs)
    altered = bytearray(blobs["train-images-idx3-ubyte.gz"])
    altered[-5] ^= 0xFF
    server.files["/m/train-images-idx3-ubyte.gz"] = bytes(altered)
    with pytest.raises(DatasetDownloadError, match="train-images-idx3-ubyte.gz.*checksum mismatch"):
        MNIST(tmp_path, download=True)
    assert _tree(tmp_path) == ["MNIST", "MNIST/raw"]  # the folders it made, nothing in them


def test_mnist_truncated_transfer_leaves_nothing(monkeypatch, server, mnist_files, tmp_path):
    _, _, blobs = mnist_files
    _serve_mnist(monkeypatch, server, blobs)
    server.truncate.add("/m/train-images-idx3-ubyte.gz")
    with pytest.raises(DatasetDownloadError, match="train-images-idx3-ubyte.gz"):
        MNIST(tmp_path, download=True)
    assert _tree(tmp_path) == ["MNIST", "MNIST/raw"]


def test_mnist_next_mirror_after_a_bad_one(monkeypatch, server, mnist_files, tmp_path):
    images, _, blobs = mnist_files
    mirrors = [_closed_port_url(), f"{server.url}/bad/", f"{server.url}/m/"]
    _serve_mnist(monkeypatch, server, blobs, mirrors=mirrors)
    for name in blobs:
        server.files[f"/bad/{name}"] = b"\x1f\x8b not the file"
    ds = MNIST(tmp_path, download=True)
    np.testing.assert_array_equal(ds.data[:, 0], images["train"])
    assert sorted(p.name for p in (tmp_path / "MNIST" / "raw").iterdir()) == sorted(blobs)


def test_mnist_without_network_names_files_and_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(MNIST, "mirrors", [_closed_port_url()])
    with pytest.raises(DatasetDownloadError) as info:
        MNIST(tmp_path, download=True)
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz") in message
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message  # the official MD5 to check against


def test_mnist_without_download_says_how(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="download=True.*t10k-images-idx3-ubyte.gz"):
        MNIST(tmp_path, train=False)


def test_mnist_never_overwrites_a_file_it_did_not_write(monkeypatch, server, mnist_files, tmp_path):
    _, _, blobs = mnist_files
    _serve_mnist(monkeypatch, server, blobs)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"mine")
    with pytest.raises(DatasetFormatError):  # the other files came; this one was kept and read
        MNIST(tmp_path, download=True)
    assert (raw / "train-labels-idx1-ubyte.gz").read_bytes() == b"mine"
    assert "/m/train-labels-idx1-ubyte.gz" not in server.requests


def test_mnist_oversized_download_is_refused(monkeypatch, server, mnist_files, tmp_path):
    _, _, blobs = mnist_files
    _serve_mnist(monkeypatch, server, blobs)
    monkeypatch.setattr(MNIST, "max_download_bytes", 100)
    with pytest.raises(DatasetDownloadError, match="more than 100"):
        MNIST(tmp_path, download=True)
    assert _tree(tmp_path) == ["MNIST", "MNIST/raw"]


# ---------------------------------------------------------------- CIFAR-10
def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


@pytest.fixture
def cifar_archive():
    rng = np.random.default_rng(1)
    batches = {name: cifar_batch(rng, 4) for name in CIFAR_NAMES}
    members = [(tarfile.TarInfo("cifar-10-batches-py"), None)]
    members[0][0].type = tarfile.DIRTYPE
    for name, (data, labels) in batches.items():
        members.append(_file(f"cifar-10-batches-py/{name}", py2_cifar_pickle(data, labels)))
    return batches, members


def _serve_cifar(monkeypatch, server, blob):
    server.files["/c/cifar-10-python.tar.gz"] = blob
    monkeypatch.setattr(CIFAR10, "url", f"{server.url}/c/cifar-10-python.tar.gz")
    monkeypatch.setattr(CIFAR10, "tgz_md5", _md5(blob))


def test_cifar_download_reads_back_what_was_served(monkeypatch, server, cifar_archive, tmp_path):
    batches, members = cifar_archive
    _serve_cifar(monkeypatch, server, _tar_gz(members))
    test = CIFAR10(tmp_path, train=False, download=True)
    np.testing.assert_array_equal(test.data.reshape(-1, 3072), batches["test_batch"][0])
    np.testing.assert_array_equal(test.targets, batches["test_batch"][1])
    train = CIFAR10(tmp_path, train=True, download=True)
    assert len(train) == 20
    assert server.requests == ["/c/cifar-10-python.tar.gz"]  # once: then it was there
    expected = ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    expected += [f"cifar-10-batches-py/{n}" for n in CIFAR_NAMES]
    assert _tree(tmp_path) == sorted(expected)  # no temporary folder left


def test_cifar_archive_already_there_is_unpacked_without_request(
    monkeypatch, server, cifar_archive, tmp_path
):
    _, members = cifar_archive
    blob = _tar_gz(members)
    _serve_cifar(monkeypatch, server, blob)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(blob)
    assert len(CIFAR10(tmp_path, train=False, download=True)) == 4
    assert server.requests == []


def test_cifar_bad_checksum_leaves_nothing(monkeypatch, server, cifar_archive, tmp_path):
    _, members = cifar_archive
    _serve_cifar(monkeypatch, server, _tar_gz(members))
    monkeypatch.setattr(CIFAR10, "tgz_md5", "0" * 32)
    with pytest.raises(DatasetDownloadError, match="cifar-10-python.tar.gz.*checksum mismatch"):
        CIFAR10(tmp_path, download=True)
    assert _tree(tmp_path) == []


@pytest.mark.parametrize(
    "hostile",
    [
        _file("cifar-10-batches-py/../../escaped", b"x"),
        _file("/tmp/escaped", b"x"),
        _file("elsewhere/escaped", b"x"),
    ],
    ids=["dotdot", "absolute", "outside-top"],
)
def test_cifar_path_traversal_is_refused(monkeypatch, server, cifar_archive, tmp_path, hostile):
    _, members = cifar_archive
    _serve_cifar(monkeypatch, server, _tar_gz(members + [hostile]))
    root = tmp_path / "root"
    with pytest.raises(DatasetDownloadError, match="escaped"):
        CIFAR10(root, download=True)
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped").exists()
    assert _tree(root) == ["cifar-10-python.tar.gz"]  # verified archive kept, nothing unpacked


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
def test_cifar_links_and_devices_are_refused(monkeypatch, server, cifar_archive, tmp_path, kind):
    _, members = cifar_archive
    link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")  # would shadow a real file
    link.type, link.linkname = kind, "/etc/passwd"
    _serve_cifar(monkeypatch, server, _tar_gz([(link, None)] + members))
    with pytest.raises(DatasetDownloadError, match="link or special file"):
        CIFAR10(tmp_path, download=True)
    assert _tree(tmp_path) == ["cifar-10-python.tar.gz"]


def test_cifar_unpacked_size_is_limited(monkeypatch, server, cifar_archive, tmp_path):
    _, members = cifar_archive
    bomb = _file("cifar-10-batches-py/zeros", bytes(1 << 20))  # compresses to ~1 KB
    blob = _tar_gz(members + [bomb])
    _serve_cifar(monkeypatch, server, blob)
    monkeypatch.setattr(CIFAR10, "max_download_bytes", len(blob) + 100_000)
    with pytest.raises(DatasetDownloadError, match="unpacks to more than"):
        CIFAR10(tmp_path, download=True)
    assert _tree(tmp_path) == ["cifar-10-python.tar.gz"]


def test_cifar_truncated_archive_leaves_nothing(monkeypatch, server, cifar_archive, tmp_path):
    _, members = cifar_archive
    _serve_cifar(monkeypatch, server, _tar_gz(members))
    server.truncate.add("/c/cifar-10-python.tar.gz")
    with pytest.raises(DatasetDownloadError, match="truncated"):
        CIFAR10(tmp_path, download=True)
    assert _tree(tmp_path) == []


def test_cifar_partial_folder_is_left_alone(monkeypatch, server, cifar_archive, tmp_path):
    _, members = cifar_archive
    _serve_cifar(monkeypatch, server, _tar_gz(members))
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetDownloadError, match="exists but lacks some files"):
        CIFAR10(tmp_path, download=True)
    assert _tree(tmp_path) == ["cifar-10-batches-py", "cifar-10-batches-py/notes.txt"]
    assert server.requests == []


def test_cifar_without_network_names_the_archive_and_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(CIFAR10, "url", _closed_port_url() + "cifar-10-python.tar.gz")
    with pytest.raises(DatasetDownloadError) as info:
        CIFAR10(tmp_path, download=True)
    assert "could not download cifar-10-python.tar.gz" in str(info.value)
    assert str(tmp_path / "cifar-10-python.tar.gz") in str(info.value)
    assert _tree(tmp_path) == []


def test_cifar100_download_reads_back_what_was_served(monkeypatch, server, tmp_path):
    rng = np.random.default_rng(3)
    batches = {
        name: (cifar_batch(rng, 3)[0], rng.integers(0, 100, 3)) for name in ("train", "test")
    }
    members = [
        _file(f"cifar-100-python/{name}", py2_cifar_pickle(data, labels, b"fine_labels"))
        for name, (data, labels) in batches.items()
    ]
    blob = _tar_gz(members)
    server.files["/c100/cifar-100-python.tar.gz"] = blob
    monkeypatch.setattr(CIFAR100, "url", f"{server.url}/c100/cifar-100-python.tar.gz")
    monkeypatch.setattr(CIFAR100, "tgz_md5", _md5(blob))
    ds = CIFAR100(tmp_path, train=False, download=True)
    np.testing.assert_array_equal(ds.data.reshape(-1, 3072), batches["test"][0])
    np.testing.assert_array_equal(ds.targets, batches["test"][1])
    assert sorted(_tree(tmp_path)) == [
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        "cifar-100-python/test",
        "cifar-100-python/train",
    ]

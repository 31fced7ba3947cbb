"""Image datasets read from their official files: :class:`CIFAR10`, :class:`CIFAR100`,
:class:`MNIST` and :class:`FashionMNIST`.

With ``download=True`` missing files are fetched from torchvision's mirrors and checked
against torchvision's MD5s (see :mod:`convlab.data._download`); files already there are
used as they are. Images are kept as one uint8 array ``data`` of shape (N, C, H, W) and
labels as ``targets`` (int64); ``ds[i]`` is ``(transform(image), target_transform(label))``
with the image a uint8 (C, H, W) array before any transform.
"""

from __future__ import annotations

import math
import pickle
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convlab.data._download import (
    DatasetDownloadError,
    download_file,
    extract_tar_gz,
    file_checksum_ok,
)
from convlab.data.dataset import Dataset, _check_index
from convlab.data.safe_pickle import UnsafePickleError, load_plain_pickle

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "MNIST",
    "FashionMNIST",
    "DatasetNotFoundError",
    "DatasetDownloadError",
    "DatasetFormatError",
    "read_idx",
    "MAX_IDX_BYTES",
]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not where they were looked for (the message says where)."""


class DatasetFormatError(ValueError):
    """A dataset file is truncated, corrupted or not in the expected format."""


class _ImageDataset(Dataset):
    # The images and labels live in _chw / _labels so that subclasses (convlab.vision's,
    # with torchvision's types) can present ``data`` and ``targets`` differently.
    _chw: np.ndarray  # uint8 (N, C, H, W)
    _labels: np.ndarray  # int64 (N,)
    split: str  # "train" or "test"
    folder: Path  # where the files were found

    def __init__(
        self,
        transform: Callable[[np.ndarray], Any] | None,
        target_transform: Callable[[int], Any] | None,
    ) -> None:
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: expected a callable or None, got {type(fn).__name__}")
        self.transform, self.target_transform = transform, target_transform

    @property
    def data(self) -> Any:
        """The images, uint8 (N, C, H, W)."""
        return self._chw

    @data.setter
    def data(self, value: Any) -> None:
        self._chw = np.asarray(value)

    @property
    def targets(self) -> Any:
        """The labels, int64 (N,)."""
        return self._labels

    @targets.setter
    def targets(self, value: Any) -> None:
        self._labels = np.asarray(value)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        i = _check_index(index, len(self))
        image, target = self._chw[i].copy(), int(self._labels[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any]]:
        if self.transform is not None or self.target_transform is not None:
            return [self[int(i)] for i in indices]
        rows = np.asarray(indices, dtype=np.int64)
        images, targets = self._chw[rows], self._labels[rows]
        return [(images[j], int(targets[j])) for j in range(len(rows))]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.split}: {len(self)} images of "
            f"{tuple(self._chw.shape[1:])}, {self.folder})"
        )


class CIFAR10(_ImageDataset):
    """CIFAR-10 from either official download: binary or Python version.

    Args:
        root: The folder holding ``cifar-10-batches-bin`` or ``cifar-10-batches-py`` (or one
            of those folders itself). The binary version is used when both are present.
        train: The 50,000 training images (``data_batch_1..5``), else the 10,000 test images.
        transform: Applied to each (3, 32, 32) uint8 image.
        target_transform: Applied to each int label.
        download: If the files are missing, download ``cifar-10-python.tar.gz`` (from
            :attr:`url`, checked against :attr:`tgz_md5`) into ``root`` and unpack its
            ``cifar-10-batches-py`` there; an archive already in ``root`` is checked and
            unpacked without downloading. Nothing happens when the files are there.

    The Python version is read with :func:`~convlab.data.safe_pickle.load_plain_pickle`:
    a file that names any class or function besides a NumPy number array is refused and no
    code from it runs.

    Raises:
        DatasetNotFoundError: If the files are missing (the message says where to put them).
        DatasetFormatError: If a file is truncated, corrupted or unsafe.
        DatasetDownloadError: If ``download`` is set and no intact copy could be fetched
            or safely unpacked (the message says why and where to put the files).
    """

    #: torchvision's source of the Python version, and its MD5.
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    filename = "cifar-10-python.tar.gz"
    tgz_md5 = "c58f30108f718f92721af3b95e74349a"
    #: The most bytes a download or its unpacked files may take (the real ones: 170 / 178 MB).
    max_download_bytes = 1 << 30

    classes: Sequence[str] = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    # The layout of the download, which CIFAR100 replaces.
    _title = "CIFAR-10"
    _bin_folder, _py_folder = "cifar-10-batches-bin", "cifar-10-batches-py"
    _binary_archive = "cifar-10-binary.tar.gz"
    _train_names = tuple(f"data_batch_{k}" for k in range(1, 6))
    _test_names = ("test_batch",)
    _label_bytes = 1  # label bytes before each binary record's pixels; the last one is used
    _label_key = "labels"

    def __init__(
        self,
        root: Any,
        train: bool = True,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(transform, target_transform)
        self.split = "train" if train else "test"
        names = list(self._train_names if train else self._test_names)
        if download:
            self.download(root)
        self.folder, kind = self._find(Path(root), names)
        parts = [
            self._read_bin(self.folder / f"{n}.bin")
            if kind == "bin"
            else self._read_py(self.folder / n)
            for n in names
        ]
        self._chw = np.concatenate([p[0] for p in parts])
        self._labels = np.concatenate([p[1] for p in parts])

    @classmethod
    def download(cls, root: Any) -> None:
        """Fetch and unpack the Python version into ``root`` unless all its files are there.

        Raises:
            DatasetDownloadError: If no intact archive could be fetched or it is unsafe.
        """
        root = Path(root)
        names = list(cls._train_names + cls._test_names)
        try:
            cls._find(root, names)
            return
        except DatasetNotFoundError:
            pass
        if (root / cls._py_folder).exists():
            # Unpacking would have to merge into (or replace) a folder we did not write.
            raise DatasetDownloadError(
                f"root: {root / cls._py_folder} exists but lacks some files; it is "
                f"left as it is: remove it, or unpack {cls.filename} there yourself"
            )
        archive = root / cls.filename
        if not (archive.is_file() and file_checksum_ok(archive, cls.tgz_md5)):
            if archive.exists():
                raise DatasetDownloadError(
                    f"root: {archive} is not the archive expected (MD5 {cls.tgz_md5}); "
                    f"it is left as it is: remove it to download again"
                )
            download_file([cls.url], archive, cls.tgz_md5, cls.max_download_bytes)
        extract_tar_gz(archive, root, cls._py_folder, cls.max_download_bytes)

    @classmethod
    def _find(cls, root: Path, names: list[str]) -> tuple[Path, str]:
        candidates = [
            (root / cls._bin_folder, "bin"),
            (root / cls._py_folder, "py"),
            (root, "bin"),
            (root, "py"),
        ]
        for folder, kind in candidates:
            files = [folder / (n + ".bin" if kind == "bin" else n) for n in names]
            if all(f.is_file() for f in files):
                return folder, kind
        for folder, kind in candidates[:2]:
            if folder.is_dir():
                missing = [
                    n + (".bin" if kind == "bin" else "")
                    for n in names
                    if not (folder / (n + (".bin" if kind == "bin" else ""))).is_file()
                ]
                raise DatasetNotFoundError(
                    f"root: {folder} lacks {', '.join(missing)}; unpack "
                    f"the whole {cls._title} archive there"
                )
        first = names[0]
        raise DatasetNotFoundError(
            f"root: no {cls._title} files in {root} (pass download=True to download them). "
            f"Get {cls._binary_archive} or {cls.filename} from "
            f"https://www.cs.toronto.edu/~kriz/cifar.html and unpack it into {root}, so that "
            f"{root / cls._bin_folder / (first + '.bin')} (or "
            f"{root / cls._py_folder / first}) exists"
        )

    def _read_bin(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        raw = np.fromfile(path, dtype=np.uint8)
        record = self._label_bytes + 3 * 32 * 32
        if raw.size == 0 or raw.size % record:
            raise DatasetFormatError(
                f"{path}: {raw.size} bytes is not a whole number of "
                f"{record}-byte {self._title} records (truncated or "
                f"not a {self._title} file)"
            )
        records = raw.reshape(-1, record)
        pixels = records[:, self._label_bytes :].reshape(-1, 3, 32, 32)
        return self._checked(path, pixels, records[:, self._label_bytes - 1])

    def _read_py(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            batch = load_plain_pickle(path.read_bytes())
        except UnsafePickleError as err:
            raise DatasetFormatError(f"{path}: {err}") from None
        except pickle.UnpicklingError as err:
            raise DatasetFormatError(f"{path}: corrupted ({err})") from None
        if not isinstance(batch, dict):
            raise DatasetFormatError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
        keys = [k.decode("latin1") if isinstance(k, bytes) else k for k in batch]
        if len(set(keys)) != len(keys):  # b"data" and "data": one would silently win
            raise DatasetFormatError(f"{path}: a key appears both as bytes and as text")
        batch = dict(zip(keys, batch.values()))
        data, labels = batch.get("data"), batch.get(self._label_key)
        if (
            not isinstance(data, np.ndarray)
            or data.ndim != 2
            or data.shape[1] != 3072
            or data.dtype != np.uint8
        ):
            got = (
                f"{data.dtype} {data.shape}"
                if isinstance(data, np.ndarray)
                else type(data).__name__
            )
            raise DatasetFormatError(
                f"{path}: expected 'data' to be a uint8 (N, 3072) array, got {got}"
            )
        if (
            not isinstance(labels, list)
            or len(labels) != len(data)
            or not all(type(v) is int for v in labels)
        ):  # bools are not class indices
            raise DatasetFormatError(
                f"{path}: expected '{self._label_key}' to be a list of {len(data)} ints"
            )
        return self._checked(path, data.reshape(-1, 3, 32, 32), np.asarray(labels))

    def _checked(
        self, path: Path, images: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        top = len(self.classes) - 1
        if labels.size and (labels.min() < 0 or labels.max() > top):
            raise DatasetFormatError(
                f"{path}: labels must lie in 0..{top}, found "
                f"{int(labels.min())}..{int(labels.max())} (corrupted)"
            )
        return np.ascontiguousarray(images), labels.astype(np.int64)


class CIFAR100(CIFAR10):
    """CIFAR-100 (the 100 fine labels) from either official download, as :class:`CIFAR10`.

    Args:
        root: The folder holding ``cifar-100-binary`` or ``cifar-100-python`` (or one of
            those folders itself).
        train: The 50,000 training images (``train``), else the 10,000 test images.
        transform: Applied to each (3, 32, 32) uint8 image.
        target_transform: Applied to each int label (0..99).
        download: As :class:`CIFAR10`'s, with ``cifar-100-python.tar.gz``.

    Raises:
        DatasetNotFoundError: If the files are missing (the message says where to put them).
        DatasetFormatError: If a file is truncated, corrupted or unsafe.
        DatasetDownloadError: If ``download`` is set and no intact copy could be fetched
            or safely unpacked.
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    filename = "cifar-100-python.tar.gz"
    tgz_md5 = "eb9058c3a382ffc7106e4002c42a8d85"

    #: The fine label names, in label order (the archive's meta file lists the same).
    classes: Sequence[str] = tuple(
        """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge
        bus butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud
        cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl
        hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man
        maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree
        pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road
        rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar
        sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip
        turtle wardrobe whale willow_tree wolf woman worm""".split()
    )

    _title = "CIFAR-100"
    _bin_folder, _py_folder = "cifar-100-binary", "cifar-100-python"
    _binary_archive = "cifar-100-binary.tar.gz"
    _train_names = ("train",)
    _test_names = ("test",)
    _label_bytes = 2  # coarse label, fine label
    _label_key = "fine_labels"


_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_MAX_HEADER = 4 + 4 * 255

#: Default for ``read_idx(max_bytes=...)``: the most data bytes an IDX header may declare
#: (2 GiB; EMNIST's largest file holds 547 MB). A gzipped file is inflated only that far.
MAX_IDX_BYTES = 1 << 31


def _gunzip(raw: bytes, limit: int, path: Path) -> bytes:
    """The first ``limit`` bytes of gzip data ``raw`` (all members), inflating no further:
    a small file cannot expand past what its IDX header declares."""
    out, total, rest = [], 0, raw
    while rest and total < limit:
        inflater = zlib.decompressobj(wbits=31)
        try:
            chunk = inflater.decompress(rest, limit - total)
        except zlib.error as err:
            raise DatasetFormatError(f"{path}: corrupted gzip data ({err})") from None
        out.append(chunk)
        total += len(chunk)
        if not inflater.eof:
            if total < limit and not inflater.unconsumed_tail:
                raise DatasetFormatError(f"{path}: corrupted gzip data (the stream is truncated)")
            break
        # zero bytes after a member are padding (gzip.decompress skips them too)
        rest = inflater.unused_data.lstrip(b"\0")
    return b"".join(out)


def _idx_header(raw: bytes, path: Path) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """``(shape, dtype, header size)`` from the start of an IDX file."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetFormatError(
            f"{path}: not an IDX file (magic {raw[:4].hex() or 'empty'}, "
            f"expected 0000 followed by a type code and a rank)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DatasetFormatError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    return shape, np.dtype(_IDX_TYPES[raw[2]]), header


def read_idx(path: Any, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a native-order array.

    Args:
        path: The file.
        max_bytes: The most data bytes the header may declare (checked before anything is
            inflated or allocated).

    Raises:
        DatasetFormatError: For a bad magic number, an unknown type code, a declared size over
            ``max_bytes``, or data that do not match the header (truncated or trailing).
    """
    path = Path(path)
    raw = path.read_bytes()
    gzipped = raw[:2] == b"\x1f\x8b"
    head = _gunzip(raw, _IDX_MAX_HEADER, path) if gzipped else raw
    shape, dtype, header = _idx_header(head, path)
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if nbytes > max_bytes:
        raise DatasetFormatError(
            f"{path}: the header says {shape} of {dtype.name}, {nbytes} "
            f"bytes, more than max_bytes={max_bytes}"
        )
    expected = header + nbytes
    if gzipped:  # one byte more than declared shows trailing data without inflating it all
        raw = _gunzip(raw, expected + 1, path)
    if len(raw) != expected:
        has = (
            f"has {len(raw)} (truncated or corrupted)"
            if len(raw) < expected
            else "holds more than that (trailing data or corrupted)"
        )
        raise DatasetFormatError(
            f"{path}: the header says {shape} of {dtype.name}, {expected} bytes, the file {has}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _as_pixels(images: np.ndarray, path: Path) -> np.ndarray:
    """IDX images as uint8: other integer types only when every value is a pixel (0..255);
    floats are refused (casting them would turn -1 into 255 and NaN into 0)."""
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind not in "iu":
        raise DatasetFormatError(
            f"{path}: images must be uint8 pixels (IDX type 0x08), the "
            f"file holds {images.dtype.name}"
        )
    if images.size and (images.min() < 0 or images.max() > 255):
        raise DatasetFormatError(
            f"{path}: images must be pixels in 0..255, the file holds "
            f"{images.dtype.name} values {int(images.min())}.."
            f"{int(images.max())}"
        )
    return images.astype(np.uint8)


def _as_class_indices(labels: np.ndarray, classes: int, path: Path) -> np.ndarray:
    """IDX labels as int64 class indices in 0..classes-1."""
    if labels.dtype.kind not in "iu":
        raise DatasetFormatError(
            f"{path}: labels must be integer class indices, the file holds {labels.dtype.name}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise DatasetFormatError(
            f"{path}: labels must lie in 0..{classes - 1}, found "
            f"{int(labels.min())}..{int(labels.max())}"
        )
    return labels.astype(np.int64)


class MNIST(_ImageDataset):
    """MNIST (or any dataset in its IDX layout, such as Fashion-MNIST), gzipped or not.

    Args:
        root: The folder holding ``train-images-idx3-ubyte[.gz]`` and the other three files,
            or torchvision's ``MNIST/raw`` below it.
        train: The 60,000 training images, else the 10,000 test images.
        transform: Applied to each (1, 28, 28) uint8 image.
        target_transform: Applied to each int label.
        download: If the split's files are missing, download the four gzipped files (from
            the first of :attr:`mirrors` that serves them intact, checked against the MD5s
            in :attr:`resources`) into ``root/MNIST/raw``, as torchvision does. They are
            kept gzipped (they are read that way). Nothing happens when the files are there.

    Raises:
        DatasetNotFoundError: If the files are missing (the message says where to put them).
        DatasetFormatError: If a file is corrupted, images and labels do not match, images
            are not pixels (0..255) or labels not class indices (0..9).
        DatasetDownloadError: If ``download`` is set and a file could not be fetched intact
            from any mirror (the message says why and where to put it).
    """

    #: torchvision's mirrors and (file, MD5) list.
    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    #: The most bytes one downloaded file may have (the largest real one: 9.9 MB).
    max_download_bytes = 1 << 28

    classes: Sequence[str] = tuple(str(d) for d in range(10))

    def __init__(
        self,
        root: Any,
        train: bool = True,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(transform, target_transform)
        self.split = "train" if train else "test"
        prefix = "train" if train else "t10k"
        root = Path(root)
        found = self._find(root, prefix)
        if found is None and download:
            # All four files, as torchvision: a program downloads with the training set
            # and then opens the test set without download=True.
            for name, md5 in self.resources:
                dest = root / type(self).__name__ / "raw" / name
                if not dest.exists():
                    download_file(self.mirrors, dest, md5, self.max_download_bytes)
            found = self._find(root, prefix)
        if found is None:
            raise DatasetNotFoundError(
                f"root: no {type(self).__name__} {self.split} files in {root} (pass "
                f"download=True to download them). Put {prefix}-images-idx3-ubyte.gz and "
                f"{prefix}-labels-idx1-ubyte.gz (gzipped or not) from "
                f"{self.mirrors[0]} into {root / type(self).__name__ / 'raw'} or {root}"
            )
        self.folder, images_path, labels_path = found
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetFormatError(
                f"{self.folder}: expected (N, H, W) images and N labels, "
                f"got {images.shape} and {labels.shape}"
            )
        self._chw = np.ascontiguousarray(_as_pixels(images, images_path)[:, None])
        self._labels = _as_class_indices(labels, len(self.classes), labels_path)

    @classmethod
    def _find(cls, root: Path, prefix: str) -> tuple[Path, Path, Path] | None:
        """(folder, images, labels) for the split ``prefix``, looked for in ``root``, then
        torchvision's ``root/<class name>/raw``, then ``root/raw``."""
        for folder in (root, root / cls.__name__ / "raw", root / "raw"):
            images_path = cls._file(folder, f"{prefix}-images", "idx3-ubyte")
            labels_path = cls._file(folder, f"{prefix}-labels", "idx1-ubyte")
            if images_path and labels_path:
                return folder, images_path, labels_path
        return None

    @staticmethod
    def _file(folder: Path, stem: str, kind: str) -> Path | None:
        for name in (f"{stem}-{kind}", f"{stem}-{kind}.gz", f"{stem}.{kind}", f"{stem}.{kind}.gz"):
            if (folder / name).is_file():
                return folder / name
        return None


class FashionMNIST(MNIST):
    """Fashion-MNIST: :class:`MNIST`'s files and layout, Zalando's images and classes.

    Looked for (and downloaded to) ``root/FashionMNIST/raw`` as torchvision does, or
    ``root`` itself; arguments and errors as :class:`MNIST`.
    """

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes: Sequence[str] = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )

"""DataLoader, datasets, transforms and the CIFAR-10 / MNIST readers."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

import convlab
from convlab.data import (
    CIFAR10,
    MNIST,
    DataLoader,
    Dataset,
    DatasetFormatError,
    DatasetNotFoundError,
    Subset,
    TensorDataset,
    UnsafePickleError,
    default_collate,
    load_plain_pickle,
    random_split,
    read_idx,
)
from convlab.data import transforms as T
from data_files import (
    CIFAR_NAMES,
    cifar_batch,
    idx_bytes,
    py2_cifar_pickle,
    write_cifar_bin,
    write_cifar_py,
    write_mnist,
)


# ---------------------------------------------------------------- DataLoader
class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((2, 3), i, np.float32), i * i


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize(
    "n,batch,drop_last",
    [(10, 3, False), (10, 3, True), (9, 3, False), (2, 5, False), (0, 4, False)],
)
def test_batches_cover_the_dataset_in_order(n, batch, drop_last, prefetch):
    loader = DataLoader(Squares(n), batch_size=batch, drop_last=drop_last, prefetch=prefetch)
    got = list(loader)
    expected = [list(range(i, min(i + batch, n))) for i in range(0, n, batch)]
    if drop_last:
        expected = [b for b in expected if len(b) == batch]
    assert len(loader) == len(got) == len(expected)
    for (x, y), rows in zip(got, expected):
        assert x.shape == (len(rows), 2, 3) and x.dtype == np.float32
        np.testing.assert_array_equal(x.numpy()[:, 0, 0], rows)
        np.testing.assert_array_equal(y.numpy(), np.square(rows))
        assert y.dtype == np.int64


def test_shuffle_is_a_permutation_reproducible_from_the_seed():
    def epoch(loader):
        return np.concatenate([y.numpy() for _, y in loader])

    a = DataLoader(TensorDataset(np.arange(50)[:, None], np.arange(50)), 8, shuffle=True, seed=3)
    b = DataLoader(TensorDataset(np.arange(50)[:, None], np.arange(50)), 8, shuffle=True, seed=3)
    first, second = epoch(a), epoch(a)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert not np.array_equal(first, np.arange(50))  # shuffled
    assert not np.array_equal(first, second)  # a new order every epoch
    np.testing.assert_array_equal(first, epoch(b))  # same seed, same orders
    np.testing.assert_array_equal(second, epoch(b))


def test_global_seed_makes_the_default_generator_reproducible():
    orders = []
    for _ in range(2):
        convlab.manual_seed(11)
        loader = DataLoader(TensorDataset(np.arange(20)), 20, shuffle=True)
        orders.append(next(iter(loader))[0].numpy())
    np.testing.assert_array_equal(*orders)


def test_random_transforms_do_not_depend_on_prefetching(rng):
    images = rng.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8)

    class Images(Dataset):
        transform = T.Compose([T.ToTensor(), T.RandomCrop(8, padding=2), T.RandomFlipHorizontal()])

        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return self.transform(images[i]), i

    runs = [
        [x.numpy() for x, _ in DataLoader(Images(), 8, shuffle=True, seed=5, prefetch=prefetch)]
        for prefetch in (0, 1, 3)
    ]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_errors_in_the_background_thread_reach_the_caller():
    class Broken(Squares):
        def __getitem__(self, i):
            if i == 7:
                raise KeyError("sample 7 is missing")
            return super().__getitem__(i)

    loader = DataLoader(Broken(12), batch_size=4, prefetch=2)
    batches = iter(loader)
    next(batches)
    with pytest.raises(KeyError, match="sample 7 is missing"):
        next(batches)


def test_leaving_a_loop_early_stops_the_prefetch_thread():
    import threading

    before = threading.active_count()
    for _ in range(5):
        for _batch in DataLoader(Squares(1000), batch_size=2, prefetch=2):
            break
    import time

    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before


def test_default_collate_structures_and_errors():
    batch = default_collate(
        [{"a": np.zeros(2), "b": 1.5, "s": "x"}, {"a": np.ones(2), "b": 2.5, "s": "y"}]
    )
    assert batch["a"].shape == (2, 2) and batch["b"].dtype == np.float64
    assert batch["s"] == ["x", "y"]
    assert default_collate([True, False]).dtype == np.bool_
    with pytest.raises(ValueError, match="different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="cannot batch object"):
        default_collate([object(), object()])


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(batch_size=0), ValueError, "batch_size: expected an int >= 1, got 0"),
        (dict(batch_size=2.5), ValueError, "batch_size"),
        (dict(prefetch=-1), ValueError, "prefetch: expected an int >= 0"),
        (dict(generator=1, seed=2), ValueError, "give one of the two"),
        (dict(generator="x"), TypeError, "generator: expected an int >= 0"),
    ],
)
def test_loader_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DataLoader(Squares(3), **kwargs)


def test_loader_rejects_a_non_dataset():
    with pytest.raises(TypeError, match="dataset: expected a map-style dataset"):
        DataLoader(42)


def test_tensor_dataset_subset_and_random_split(rng):
    x, y = rng.normal(size=(10, 3)).astype(np.float32), np.arange(10)
    ds = TensorDataset(convlab.tensor(x), y)
    assert len(ds) == 10
    np.testing.assert_array_equal(ds[-1][0].numpy(), x[-1])
    with pytest.raises(IndexError, match="index: 10 is out of range"):
        ds[10]
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(x, np.arange(9))
    sub = Subset(ds, [4, 2])
    assert len(sub) == 2 and sub[1][1] == 2
    parts = random_split(ds, [0.7, 0.3], seed=0)
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(np.concatenate([p.indices for p in parts])) == list(range(10))
    with pytest.raises(ValueError, match="sum to len"):
        random_split(ds, [5, 6])


# ---------------------------------------------------------------- transforms
def test_random_crop_is_a_window_of_the_padded_image(rng):
    image = rng.integers(1, 256, (3, 6, 5), dtype=np.uint8)
    padded = np.pad(image, ((0, 0), (2, 2), (2, 2)))
    crop = T.RandomCrop(padding=2)
    seen = set()
    for _ in range(400):
        out = crop(image)
        assert out.shape == image.shape and out.dtype == image.dtype
        matches = [
            (i, j)
            for i in range(5)
            for j in range(5)
            if np.array_equal(out, padded[:, i : i + 6, j : j + 5])
        ]
        assert matches, "the crop is not a window of the zero-padded image"
        seen.update(matches)
    assert len(seen) == 25  # every offset occurs


def test_random_crop_to_another_size_and_errors(rng):
    image = rng.normal(size=(2, 8, 8)).astype(np.float32)
    out = T.RandomCrop((4, 6))(convlab.tensor(image))
    assert isinstance(out, convlab.Tensor) and out.shape == (2, 4, 6)
    with pytest.raises(
        ValueError,
        match=r"size: crop \(12, 12\) is larger than the padded "
        r"image \(10, 10\)",
    ):
        T.RandomCrop(12, padding=1)(image)
    with pytest.raises(ValueError, match="padding: expected an int >= 0"):
        T.RandomCrop(4, padding=-1)
    with pytest.raises(ValueError, match=r"image: expected a \(C, H, W\) or \(H, W\) image"):
        T.RandomCrop(2)(np.zeros((1, 2, 3, 4)))


def test_flip_normalize_and_to_tensor(rng):
    image = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    np.testing.assert_array_equal(T.RandomFlipHorizontal(p=1.0)(image), image[:, :, ::-1])
    np.testing.assert_array_equal(T.RandomFlipHorizontal(p=0.0)(image), image)
    flips = [np.array_equal(T.RandomHorizontalFlip()(image), image) for _ in range(200)]
    assert 60 < sum(flips) < 140
    tensor = T.ToTensor()(image)
    assert tensor.dtype == np.float32
    np.testing.assert_allclose(tensor.numpy(), image / 255.0, rtol=1e-6)
    assert T.ToTensor()(image[0]).shape == (1, 4, 5)
    out = T.Normalize([0.1, 0.2, 0.3], [0.5, 0.25, 2.0])(tensor)
    expected = (image / 255.0 - np.array([0.1, 0.2, 0.3])[:, None, None]) / np.array(
        [0.5, 0.25, 2.0]
    )[:, None, None]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"std: expected values > 0"):
        T.Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match=r"image: expected \(2, H, W\) for 2 channel means"):
        T.Normalize([0, 0], [1, 1])(tensor)
    with pytest.raises(ValueError, match=r"p: expected a probability"):
        T.RandomFlipHorizontal(1.5)
    with pytest.raises(TypeError, match="transforms\\[1\\]: expected a callable"):
        T.Compose([T.ToTensor(), 3])


# ---------------------------------------------------------------- CIFAR-10
def _cifar_files(rng, n=4):
    return {name: cifar_batch(rng, n + i) for i, name in enumerate(CIFAR_NAMES)}


@pytest.mark.parametrize("layout", ["bin", "py2", "py3"])
def test_cifar10_reads_each_official_format(tmp_path, rng, layout):
    batches = _cifar_files(rng)
    if layout == "bin":
        write_cifar_bin(tmp_path, batches)
    else:
        write_cifar_py(tmp_path, batches, python2=layout == "py2")
    train, test = CIFAR10(tmp_path), CIFAR10(tmp_path, train=False)
    data = np.concatenate([batches[n][0] for n in CIFAR_NAMES[:5]])
    labels = np.concatenate([batches[n][1] for n in CIFAR_NAMES[:5]])
    assert len(train) == len(data) and len(test) == len(batches["test_batch"][1])
    np.testing.assert_array_equal(train.data.reshape(len(data), -1), data)
    np.testing.assert_array_equal(train.targets, labels)
    image, label = train[3]
    assert image.shape == (3, 32, 32) and image.dtype == np.uint8 and label == labels[3]
    # the official layout: 1024 red, then green, then blue values, row-major
    np.testing.assert_array_equal(image[1].reshape(-1), data[3, 1024:2048])
    # also found when root is the batches folder itself
    folder = tmp_path / ("cifar-10-batches-bin" if layout == "bin" else "cifar-10-batches-py")
    assert len(CIFAR10(folder, train=False)) == len(test)


def test_cifar10_with_transforms_through_a_loader(tmp_path, rng):
    write_cifar_bin(tmp_path, _cifar_files(rng))
    ds = CIFAR10(
        tmp_path,
        transform=T.Compose([T.ToTensor(), T.RandomCrop(32, padding=4)]),
        target_transform=lambda y: y + 100,
    )
    x, y = next(iter(DataLoader(ds, batch_size=5)))
    assert x.shape == (5, 3, 32, 32) and x.dtype == np.float32
    assert np.all(y.numpy() >= 100)


def test_cifar10_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-bin.*data_batch_1.bin"):
        CIFAR10(tmp_path / "nowhere")
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="lacks data_batch_1"):
        CIFAR10(tmp_path)


def test_cifar10_truncated_and_corrupted_files(tmp_path, rng):
    batches = _cifar_files(rng)
    folder = write_cifar_bin(tmp_path, batches)
    blob = (folder / "test_batch.bin").read_bytes()
    (folder / "test_batch.bin").write_bytes(blob[:-10])
    with pytest.raises(DatasetFormatError, match="not a whole number of 3073-byte"):
        CIFAR10(tmp_path, train=False)
    bad = bytearray(blob)
    bad[0] = 200
    (folder / "test_batch.bin").write_bytes(bytes(bad))
    with pytest.raises(DatasetFormatError, match=r"labels must lie in 0..9"):
        CIFAR10(tmp_path, train=False)

    py = write_cifar_py(tmp_path / "p", batches)
    (py / "test_batch").write_bytes(py2_cifar_pickle(*batches["test_batch"])[:-40])
    with pytest.raises(DatasetFormatError, match="corrupted"):
        CIFAR10(tmp_path / "p", train=False)
    (py / "test_batch").write_bytes(pickle.dumps({b"data": [1, 2], b"labels": [0]}))
    with pytest.raises(DatasetFormatError, match=r"expected 'data' to be a uint8 \(N, 3072\)"):
        CIFAR10(tmp_path / "p", train=False)


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_pickles_that_name_code_are_refused_and_nothing_runs(tmp_path, rng):
    batches = _cifar_files(rng)
    py = write_cifar_py(tmp_path, batches)
    marker = tmp_path / "ran"
    evil = {b"data": batches["test_batch"][0], b"labels": [0] * 4, b"x": _Payload(marker)}
    (py / "test_batch").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(DatasetFormatError, match="refused to load .*open"):
        CIFAR10(tmp_path, train=False)
    assert not marker.exists()
    for obj in (np.array([object()], dtype=object), {"a": np.float64(1.0)}, {1, 2}):
        with pytest.raises(UnsafePickleError):
            load_plain_pickle(pickle.dumps(obj, protocol=2))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_pickle_reads_plain_values_and_number_arrays(protocol):
    obj = {
        "a": [1, 2.5, "s", b"b", None, True, (3, 4)],
        "x": np.arange(12, dtype=">i4").reshape(3, 4),
        "y": np.eye(2, dtype=np.float32).T,
    }
    got = load_plain_pickle(pickle.dumps(obj, protocol=protocol))
    assert got["a"] == obj["a"]
    np.testing.assert_array_equal(got["x"], obj["x"])
    np.testing.assert_array_equal(got["y"], obj["y"])
    with pytest.raises(pickle.UnpicklingError, match="not a valid pickle"):
        load_plain_pickle(b"\x80\x02garbage")


# ---------------------------------------------------------------- MNIST
@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_mnist_reads_idx_files(tmp_path, rng, gz):
    images = {"train": rng.integers(0, 256, (7, 28, 28)), "t10k": rng.integers(0, 256, (3, 28, 28))}
    labels = {"train": rng.integers(0, 10, 7), "t10k": rng.integers(0, 10, 3)}
    write_mnist(tmp_path / "MNIST" / "raw", images, labels, gz=gz)
    train, test = MNIST(tmp_path), MNIST(tmp_path, train=False)
    assert len(train) == 7 and len(test) == 3
    image, label = train[4]
    assert image.shape == (1, 28, 28) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0], images["train"][4])
    assert label == labels["train"][4]
    np.testing.assert_array_equal(test.targets, labels["t10k"])


def test_mnist_bad_files(tmp_path, rng):
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.gz"):
        MNIST(tmp_path)
    images = {"train": rng.integers(0, 256, (4, 5, 5))}
    labels = {"train": rng.integers(0, 10, 3)}
    write_mnist(tmp_path, images, labels, gz=False)
    with pytest.raises(DatasetFormatError, match=r"expected \(N, H, W\) images and N labels"):
        MNIST(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(images["train"])[:-7])
    with pytest.raises(DatasetFormatError, match="truncated or corrupted"):
        read_idx(path)
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(DatasetFormatError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(gzip.compress(idx_bytes(images["train"]))[:-9])
    with pytest.raises(DatasetFormatError, match="corrupted gzip"):
        read_idx(path)

"""convlab.utils.data: torch.utils.data's names, samplers, default_collate parity with PyTorch,
and DataLoader worker processes (order, seeding, errors, persistence, timeout, shutdown)."""

from __future__ import annotations

import collections
import multiprocessing
import os
import random
import time

import numpy as np
import pytest

import convlab
import convlab.utils.data as data
from convlab._tensor import Tensor
from convlab.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
    random_split,
)

torch = pytest.importorskip("torch")
from torch.utils.data import default_collate as torch_collate  # noqa: E402

Point = collections.namedtuple("Point", ["x", "label"])

NAMES = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "DataLoader",
    "Subset",
    "ConcatDataset",
    "random_split",
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "BatchSampler",
    "WeightedRandomSampler",
    "default_collate",
    "get_worker_info",
]


def test_torch_names_are_there_and_are_convlab_data():
    import torch.utils.data as tdata

    for name in NAMES:
        assert hasattr(tdata, name)
        assert getattr(data, name) is getattr(convlab.data, name)
    from convlab.utils.data import DataLoader as Loader

    assert Loader is convlab.data.DataLoader
    assert convlab.utils.data is data
    assert callable(convlab.utils.from_torch_state_dict)


# ---------------------------------------------------------------- samplers
def test_sequential_and_random_sampler_semantics():
    assert list(SequentialSampler(range(5))) == [0, 1, 2, 3, 4]
    s = RandomSampler(range(10), generator=0)
    first, second = list(s), list(s)
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert first != second  # a new permutation each epoch
    assert len(s) == 10
    assert list(RandomSampler(range(10), generator=3)) == list(
        RandomSampler(range(10), generator=3)
    )
    # more samples than the data without replacement: whole permutations chained
    long = list(RandomSampler(range(4), num_samples=10, generator=1))
    assert (
        len(long) == 10 and sorted(long[:4]) == [0, 1, 2, 3] and sorted(long[4:8]) == [0, 1, 2, 3]
    )
    assert len(set(long[8:])) == 2
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=300, generator=2))
    assert len(drawn) == 300 and set(drawn) == {0, 1, 2}
    convlab.manual_seed(5)
    a = list(RandomSampler(range(20)))
    convlab.manual_seed(5)
    assert list(RandomSampler(range(20))) == a
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)


def test_weighted_random_sampler_frequencies():
    weights = [1.0, 2.0, 0.0, 7.0]
    drawn = np.array(list(WeightedRandomSampler(weights, 20000, generator=0)))
    freq = np.bincount(drawn, minlength=4) / len(drawn)
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.0, 0.7], atol=0.02)
    no_repeat = list(WeightedRandomSampler(weights, 3, replacement=False, generator=1))
    assert sorted(no_repeat) == [0, 1, 3]
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler(weights, 4, replacement=False)
    with pytest.raises(ValueError, match="1d sequence"):
        WeightedRandomSampler(np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match=">= 0"):
        WeightedRandomSampler([1.0, -1.0], 3)
    assert len(WeightedRandomSampler(convlab.tensor([1.0, 1.0]), 5)) == 5


@pytest.mark.parametrize(
    "n,size,drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False)]
)
def test_batch_sampler_matches_torch(n, size, drop_last):
    ours = list(BatchSampler(SequentialSampler(range(n)), size, drop_last))
    theirs = list(
        torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), size, drop_last)
    )
    assert ours == theirs
    assert len(BatchSampler(range(n), size, drop_last)) == len(theirs)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(n), 0, False)
    with pytest.raises(TypeError, match="drop_last should be a boolean"):
        BatchSampler(range(n), 2, 0)


def test_custom_sampler_and_batch_sampler_drive_the_loader():
    class Reverse(Sampler[int]):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n - 1, -1, -1))

        def __len__(self):
            return self.n

    ds = TensorDataset(np.arange(6))
    got = [b[0].numpy().tolist() for b in DataLoader(ds, batch_size=4, sampler=Reverse(6))]
    assert got == [[5, 4, 3, 2], [1, 0]]
    got = [b[0].numpy().tolist() for b in DataLoader(ds, batch_sampler=[[0, 5], [2]])]
    assert got == [[0, 5], [2]]
    single = [x[0].numpy().tolist() for x in DataLoader(ds, batch_size=None)]
    assert single == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=Reverse(6), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_size=2, batch_sampler=[[0]])
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(ds, batch_size=None, drop_last=True)


def test_loader_generator_gives_the_same_order_and_sampler_semantics():
    ds = TensorDataset(np.arange(30))
    runs = [
        [b[0].numpy().tolist() for b in DataLoader(ds, 7, shuffle=True, generator=g)]
        for g in (np.random.default_rng(4), np.random.default_rng(4))
    ]
    assert runs[0] == runs[1]
    assert sorted(sum(runs[0], [])) == list(range(30))


# ---------------------------------------------------------------- datasets
def test_concat_dataset_indexing_matches_torch():
    a, b, c = list(range(3)), list(range(10, 12)), list(range(20, 24))
    ours, theirs = ConcatDataset([a, b, c]), torch.utils.data.ConcatDataset([a, b, c])
    assert len(ours) == len(theirs) == 9
    for i in range(-9, 9):
        assert ours[i] == theirs[i]
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    with pytest.raises(IndexError):
        ours[9]
    with pytest.raises(IndexError):
        ours[-10]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([a, Stream()])
    both = TensorDataset(np.arange(3)) + TensorDataset(np.arange(3, 5))
    assert isinstance(both, ConcatDataset) and both[4][0] == 4


@pytest.mark.parametrize(
    "n,fractions", [(10, [0.7, 0.3]), (11, [0.5, 0.5]), (7, [0.2, 0.2, 0.6]), (5, [1 / 3] * 3)]
)
def test_random_split_fractions_as_pytorch(n, fractions):
    ours = random_split(range(n), fractions, generator=0)
    theirs = random_split_torch = torch.utils.data.random_split(range(n), fractions)
    assert [len(p) for p in ours] == [len(p) for p in random_split_torch]
    assert len(theirs) == len(ours)
    assert sorted(int(i) for p in ours for i in p.indices) == list(range(n))
    assert all(isinstance(p, Subset) for p in ours)


def test_random_split_generator_and_seed():
    a = random_split(range(20), [5, 15], generator=np.random.default_rng(1))
    b = random_split(range(20), [5, 15], seed=1)
    assert a[0].indices.tolist() == b[0].indices.tolist()
    with pytest.raises(ValueError, match="give one of the two"):
        random_split(range(4), [2, 2], generator=1, seed=1)


# ---------------------------------------------------------------- default_collate
def _numpy(x):
    if isinstance(x, (Tensor, torch.Tensor)):
        return ("tensor", x.numpy().dtype.str, x.numpy().tolist())
    if isinstance(x, dict):
        return {k: _numpy(v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return (type(x).__name__, *[_numpy(v) for v in x])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_numpy(v) for v in x])
    return (type(x).__name__, x)


CASES = {
    "arrays": [np.arange(3, dtype=np.float32), np.ones(3, np.float32)],
    "ints": [1, 2, 3],
    "floats": [1.5, 2.5],
    "bools": [True, False],
    "numpy scalars": [np.float32(1.5), np.float32(2.0)],
    "numpy ints": [np.int16(1), np.int16(4)],
    "strings": ["a", "b"],
    "numpy strings": [np.str_("a"), np.str_("b")],
    "bytes": [b"a", b"b"],
    "tuples": [(np.zeros(2), 1, "a"), (np.ones(2), 2, "b")],
    "lists": [[1, 2.5], [3, 4.5]],
    "dicts": [
        {"image": np.zeros((2, 2), np.uint8), "label": 1, "meta": {"name": "a", "w": 0.5}},
        {"image": np.ones((2, 2), np.uint8), "label": 0, "meta": {"name": "b", "w": 1.5}},
    ],
    "namedtuples": [Point(np.zeros(2, np.float32), 1), Point(np.ones(2, np.float32), 2)],
    "ordered dicts": [collections.OrderedDict(b=1, a=2.0), collections.OrderedDict(b=3, a=4.0)],
}


@pytest.mark.parametrize("name", list(CASES))
def test_default_collate_matches_torch(name):
    samples = CASES[name]
    ours, theirs = default_collate(samples), torch_collate(samples)
    assert _numpy(ours) == _numpy(theirs)
    if isinstance(theirs, tuple):
        assert type(ours) is type(theirs)


def test_default_collate_of_convlab_tensors():
    out = default_collate([convlab.tensor([1.0, 2.0]), convlab.tensor([3.0, 4.0])])
    assert isinstance(out, Tensor) and out.shape == (2, 2)
    np.testing.assert_array_equal(out.numpy(), [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "samples,error,match",
    [
        (
            [{"a": {"img": np.zeros(2)}}, {"a": {"img": np.zeros(3)}}],
            ValueError,
            r"samples\['a'\]\['img'\]: cannot stack a batch of different shapes",
        ),
        ([(1, object()), (2, object())], TypeError, r"samples\[1\]: default_collate cannot batch"),
        (
            [Point(np.zeros(2), object()), Point(np.zeros(2), object())],
            TypeError,
            r"samples\.label: default_collate cannot batch object",
        ),
        ([{"a": 1}, {"b": 1}], ValueError, r"samples\[1\]: dict samples .* same keys"),
        ([(1, 2), (1,)], ValueError, r"samples: each sample .* same length"),
        (
            [{"s": np.array(["x"])}, {"s": np.array(["y"])}],
            TypeError,
            r"samples\['s'\]: default_collate: batch must contain",
        ),
    ],
)
def test_default_collate_errors_name_the_field(samples, error, match):
    with pytest.raises(error, match=match):
        default_collate(samples)


# ---------------------------------------------------------------- workers
class Numbers(Dataset):
    """Sample i: an array, a label, and which process made it."""

    def __init__(self, n=23):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        info = get_worker_info()
        return {
            "x": np.full(3, i, np.float32),
            "y": i,
            "worker": -1 if info is None else info.id,
            "noise": convlab.data.sample_rng().random(),
        }


def _children_settle(before, deadline_s=10):
    deadline = time.time() + deadline_s
    while len(multiprocessing.active_children()) > before and time.time() < deadline:
        time.sleep(0.05)
    return len(multiprocessing.active_children())


@pytest.fixture
def no_leaks():
    before = len(multiprocessing.active_children())
    yield
    assert _children_settle(before) <= before


@pytest.mark.parametrize("workers,prefetch_factor", [(1, 2), (2, 1), (3, 4)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_workers_give_the_same_batches_in_order(no_leaks, workers, prefetch_factor, shuffle):
    def run(**kw):
        loader = DataLoader(Numbers(), 4, shuffle=shuffle, generator=7, **kw)
        return [(b["x"].numpy(), b["y"].numpy(), b["noise"].numpy()) for b in loader]

    plain = run()
    parallel = run(num_workers=workers, prefetch_factor=prefetch_factor)
    assert len(plain) == len(parallel) == 6
    for a, b in zip(plain, parallel):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_batches_are_dealt_round_robin_to_the_workers(no_leaks):
    loader = DataLoader(Numbers(12), 2, num_workers=3)
    assert [int(b["worker"].numpy()[0]) for b in loader] == [0, 1, 2, 0, 1, 2]


def test_iterable_dataset_split_by_worker_info_as_torch(no_leaks):
    class Stream(IterableDataset):
        def __iter__(self):
            info = get_worker_info()
            lo, step = (0, 1) if info is None else (info.id, info.num_workers)
            return iter([np.int64(i) for i in range(lo, 10, step)])

    class TorchStream(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            lo, step = (0, 1) if info is None else (info.id, info.num_workers)
            return iter(range(lo, 10, step))

    for workers in (0, 2):
        for drop_last in (False, True):
            ours = [
                b.numpy().tolist()
                for b in DataLoader(Stream(), 3, num_workers=workers, drop_last=drop_last)
            ]
            theirs = [
                b.tolist()
                for b in torch.utils.data.DataLoader(
                    TorchStream(), 3, num_workers=workers, drop_last=drop_last
                )
            ]
            assert ours == theirs


def _record_init(worker_id):
    info = get_worker_info()
    os.environ["CONVLAB_TEST_INIT"] = f"{worker_id}:{info.id}:{info.num_workers}:{info.seed}"


class InitReport(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        info = get_worker_info()
        return (
            os.environ.get("CONVLAB_TEST_INIT", ""),
            info.seed,
            type(info.dataset).__name__,
            random.random(),
            np.random.random(),
            convlab.rand(1).item(),
        )


def test_worker_init_fn_seeds_and_get_worker_info(no_leaks):
    assert get_worker_info() is None
    loader = DataLoader(InitReport(), 1, num_workers=2, worker_init_fn=_record_init, generator=3)
    rows = list(loader)
    inits = [r[0][0] for r in rows]
    assert inits[0].startswith("0:0:2:") and inits[1].startswith("1:1:2:")
    base = int(inits[0].split(":")[3])
    assert int(inits[1].split(":")[3]) == base + 1
    assert [int(r[1].numpy()[0]) for r in rows] == [base, base + 1, base, base + 1]
    assert list(rows[0][2]) == ["InitReport"]  # a tuple, as in PyTorch
    # each worker's generators are seeded from its seed: the two workers differ...
    assert rows[0][3].numpy()[0] != rows[1][3].numpy()[0]
    # ...and the same loader seed reproduces them
    again = list(
        DataLoader(InitReport(), 1, num_workers=2, worker_init_fn=_record_init, generator=3)
    )
    for a, b in zip(rows, again):
        for k in (3, 4, 5):
            np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    assert "CONVLAB_TEST_INIT" not in os.environ  # it ran in the workers only


class Threads(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        x = convlab.tensor(np.ones((8, 8), np.float32))
        return (x @ x).numpy(), convlab.get_num_threads()


def test_workers_run_kernels_on_one_thread(no_leaks):
    batches = list(DataLoader(Threads(), 1, num_workers=2))
    assert [int(b[1].numpy()[0]) for b in batches] == [1, 1]
    np.testing.assert_array_equal(batches[0][0].numpy()[0], np.full((8, 8), 8.0))


def test_worker_info_is_read_only():
    info = data.WorkerInfo(id=0, num_workers=1, seed=1, dataset=None)
    with pytest.raises(RuntimeError, match="read-only"):
        info.id = 3


class Broken(Numbers):
    def __getitem__(self, i):
        if i == 9:
            raise KeyError("sample 9 is missing")
        return super().__getitem__(i)


def test_worker_exception_is_reraised_with_its_traceback(no_leaks):
    batches = iter(DataLoader(Broken(), 4, num_workers=2))
    next(batches)
    next(batches)
    with pytest.raises(KeyError) as caught:
        next(batches)
    text = str(caught.value)
    assert "Caught KeyError in DataLoader worker process 0" in text
    assert "Traceback (most recent call last)" in text
    assert 'raise KeyError("sample 9 is missing")' in text
    assert "sample 9 is missing" in text
    del batches


class LocalError(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


def _fail_init(worker_id):
    raise LocalError("needs", "two")


def test_worker_init_fn_errors_reach_the_caller(no_leaks):
    with pytest.raises(ZeroDivisionError, match="worker process 0"):
        list(DataLoader(Numbers(), 4, num_workers=1, worker_init_fn=_zero_division))
    # an exception whose constructor takes other arguments becomes a RuntimeError
    with pytest.raises(RuntimeError, match="Caught LocalError in DataLoader worker"):
        list(DataLoader(Numbers(), 4, num_workers=1, worker_init_fn=_fail_init))


def _zero_division(worker_id):
    return 1 / 0


def test_persistent_workers_are_reused_across_epochs(no_leaks):
    before = {p.pid for p in multiprocessing.active_children()}
    loader = DataLoader(
        Numbers(10), 3, shuffle=True, num_workers=2, persistent_workers=True, generator=1
    )
    first = [b["y"].numpy().tolist() for b in loader]
    pids = {p.pid for p in multiprocessing.active_children()} - before
    assert len(pids) == 2
    for _ in loader:  # an epoch left early
        break
    second = [b["y"].numpy().tolist() for b in loader]
    assert {p.pid for p in multiprocessing.active_children()} - before == pids
    assert sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(10))
    assert first != second
    # the same batches as without workers, epoch after epoch
    plain = DataLoader(Numbers(10), 3, shuffle=True, generator=1)
    expected = [[b["y"].numpy().tolist() for b in plain] for _ in range(3)]
    assert [first, second] == [expected[0], expected[2]]
    del loader


class Slow(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i >= 2:
            time.sleep(5)
        return i


def test_timeout_raises(no_leaks):
    start = time.time()
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.5 seconds"):
        list(DataLoader(Slow(), 2, num_workers=1, timeout=0.5))
    assert time.time() - start < 4.5


def test_a_dead_worker_is_reported(no_leaks):
    class Dies(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            os._exit(3)

    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        list(DataLoader(Dies(), 2, num_workers=1))


def test_no_children_leak_after_the_end_a_break_or_an_error():
    before = len(multiprocessing.active_children())
    list(DataLoader(Numbers(), 4, num_workers=2))
    assert _children_settle(before) == before
    for _ in DataLoader(Numbers(), 4, num_workers=2):
        break
    assert _children_settle(before) == before
    with pytest.raises(KeyError):
        list(DataLoader(Broken(), 2, num_workers=2))
    assert _children_settle(before) == before


def test_pin_memory_gives_the_same_batches_with_or_without_a_gpu(no_leaks):
    """A no-op without a GPU; with one (or the emulator), batches copied to pinned memory."""
    plain = [b["x"].numpy() for b in DataLoader(Numbers(), 5)]
    for workers in (0, 2):
        pinned = [
            b["x"].numpy() for b in DataLoader(Numbers(), 5, num_workers=workers, pin_memory=True)
        ]
        for a, b in zip(plain, pinned):
            np.testing.assert_array_equal(a, b)


def test_spawned_workers(no_leaks):
    loader = DataLoader(
        TensorDataset(np.arange(8)), 3, num_workers=2, multiprocessing_context="spawn"
    )
    assert [b[0].numpy().tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6, 7]]


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(num_workers=-1), ValueError, "num_workers: expected an int >= 0"),
        (dict(timeout=-1), ValueError, "timeout: expected a number of seconds >= 0"),
        (dict(prefetch_factor=2), ValueError, "prefetch_factor: only used with num_workers"),
        (dict(num_workers=1, prefetch_factor=0), ValueError, "prefetch_factor: expected an int"),
        (dict(persistent_workers=True), ValueError, "persistent_workers: needs num_workers"),
    ],
)
def test_worker_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DataLoader(Numbers(), **kwargs)


def test_iterable_dataset_refuses_shuffle_and_samplers():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(ValueError, match="expected unspecified shuffle"):
        DataLoader(Stream(), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler"):
        DataLoader(Stream(), sampler=[0])


def test_torch_utils_data_submodules_exist():
    import convlab.utils.data as data
    from convlab.utils.data.dataloader import DataLoader, default_collate
    from convlab.utils.data.dataset import Dataset, TensorDataset
    from convlab.utils.data.sampler import SubsetRandomSampler

    assert DataLoader is data.DataLoader and default_collate is data.default_collate
    assert Dataset is data.Dataset and TensorDataset is data.TensorDataset
    assert SubsetRandomSampler is data.SubsetRandomSampler

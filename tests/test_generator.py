"""``convlab.Generator`` and ``generator=`` (issue 29, item 11's generator).

Bit-identity with PyTorch's streams is not a goal: the tests check reproducibility, independence
from the default stream, state round trips, and the distributions' support, dtypes and shapes
against PyTorch's functions (and moments against their closed forms).
"""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from convlab.utils.data import (
    DataLoader,
    Dataset,
    RandomSampler,
    TensorDataset,
    get_worker_info,
    random_split,
)

torch = pytest.importorskip("torch")

# each sampling function called with the same keywords in both libraries
DRAWS = [
    ("rand", lambda lib, g: lib.rand(2, 3, generator=g)),
    ("rand_f64", lambda lib, g: lib.rand((4,), generator=g, dtype=lib.float64)),
    ("randn", lambda lib, g: lib.randn(3, 2, generator=g)),
    ("randint_high", lambda lib, g: lib.randint(5, (7,), generator=g)),
    ("randint_low_high", lambda lib, g: lib.randint(-3, 4, (2, 5), generator=g)),
    ("randint_dtype", lambda lib, g: lib.randint(0, 9, size=(3,), generator=g, dtype=lib.int32)),
    ("randperm", lambda lib, g: lib.randperm(10, generator=g)),
    ("normal_tensors", lambda lib, g: lib.normal(lib.zeros(3, 2), lib.ones(2) * 2, generator=g)),
    ("normal_numbers", lambda lib, g: lib.normal(1.0, 0.5, (4,), generator=g)),
    ("normal_mean_tensor", lambda lib, g: lib.normal(lib.arange(4.0), 1.0, generator=g)),
    ("bernoulli", lambda lib, g: lib.bernoulli(lib.full((5, 2), 0.3), generator=g)),
    ("multinomial", lambda lib, g: lib.multinomial(lib.tensor([1.0, 2.0, 3.0]), 2, generator=g)),
    (
        "multinomial_rows",
        lambda lib, g: lib.multinomial(lib.ones(3, 4), 6, replacement=True, generator=g),
    ),
    ("rand_like", lambda lib, g: lib.rand_like(lib.zeros(2, 2, dtype=lib.float64), generator=g)),
    ("randn_like", lambda lib, g: lib.randn_like(lib.zeros(3), generator=g)),
    (
        "randint_like",
        lambda lib, g: lib.randint_like(lib.zeros(3, dtype=lib.int32), 4, 9, generator=g),
    ),
    ("poisson", lambda lib, g: lib.poisson(lib.full((3,), 2.0), generator=g)),
    ("bernoulli_method", lambda lib, g: lib.full((4,), 0.5).bernoulli(generator=g)),
    ("multinomial_method", lambda lib, g: lib.ones(3, 4).multinomial(2, generator=g)),
]


def _ids(cases):
    return [pytest.param(fn, id=name) for name, fn in cases]


@pytest.mark.parametrize("draw", _ids(DRAWS))
def test_shapes_and_dtypes_match_torch(draw):
    ours = draw(convlab, convlab.Generator().manual_seed(1))
    theirs = draw(torch, torch.Generator().manual_seed(1))
    assert ours.shape == tuple(theirs.shape)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    assert not ours.requires_grad


@pytest.mark.parametrize("draw", _ids(DRAWS))
def test_same_seed_same_numbers_and_default_stream_untouched(draw):
    convlab.manual_seed(5)
    before = convlab.default_generator.get_state()
    a = draw(convlab, convlab.Generator().manual_seed(42))
    b = draw(convlab, convlab.Generator().manual_seed(42))
    assert np.array_equal(a.numpy(), b.numpy())
    assert np.array_equal(convlab.default_generator.get_state().numpy(), before.numpy())
    c = draw(convlab, convlab.Generator().manual_seed(43))
    if c.numel() > 3 and c.dtype != convlab.bool_:
        assert not np.array_equal(a.numpy(), c.numpy())


def test_values_lie_in_each_distributions_support():
    g = convlab.Generator().manual_seed(7)
    ints = convlab.randint(-3, 4, (2000,), generator=g).numpy()
    assert ints.min() == -3 and ints.max() == 3
    assert sorted(convlab.randperm(50, generator=g).tolist()) == list(range(50))
    u = convlab.rand(5000, generator=g, dtype=convlab.float64).numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.02
    z = convlab.randn(20000, generator=g, dtype=convlab.float64).numpy()
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    n = convlab.normal(convlab.full((20000,), 3.0), 0.5, generator=g).numpy()
    assert abs(n.mean() - 3) < 0.02 and abs(n.std() - 0.5) < 0.02
    coin = convlab.bernoulli(convlab.full((20000,), 0.25), generator=g).numpy()
    assert set(np.unique(coin)) <= {0.0, 1.0} and abs(coin.mean() - 0.25) < 0.02
    picks = convlab.multinomial(convlab.tensor([0.0, 1.0, 3.0]), 4000, True, generator=g).numpy()
    assert picks.min() >= 1 and abs((picks == 2).mean() - 0.75) < 0.03
    once = convlab.multinomial(convlab.ones(2, 5), 5, generator=g).numpy()
    assert all(sorted(row) == list(range(5)) for row in once)
    half = convlab.rand(100, generator=g, dtype=convlab.float16)
    assert half.dtype == convlab.float16 and 0 <= float(half.min()) and float(half.max()) <= 1


def test_generator_api_as_torch():
    g = convlab.Generator()
    assert g.manual_seed(42) is g and g.initial_seed() == 42
    assert g.device == "cpu" and convlab.Generator("cuda").device == "gpu"
    seed = g.seed()
    assert isinstance(seed, int) and g.initial_seed() == seed
    assert convlab.Generator().initial_seed() == torch.Generator().initial_seed()
    assert convlab.manual_seed(3) is convlab.default_generator
    assert convlab.initial_seed() == 3
    assert isinstance(convlab.seed(), int)
    with pytest.raises(ValueError):
        convlab.Generator("tpu")
    with pytest.raises(TypeError):
        g.manual_seed(1.5)
    with pytest.raises(TypeError):
        convlab.randn(3, generator="seed")


def test_state_round_trip_is_a_uint8_tensor():
    g = convlab.Generator().manual_seed(11)
    convlab.rand(3, generator=g)
    state = g.get_state()
    assert isinstance(state, convlab.Tensor) and state.dtype == convlab.uint8 and state.ndim == 1
    first = convlab.randn(5, generator=g).numpy()
    other = convlab.Generator().set_state(state)
    assert other.initial_seed() == 11
    assert np.array_equal(convlab.randn(5, generator=other).numpy(), first)
    g.set_state(state.numpy())  # a NumPy array of the same bytes works too
    assert np.array_equal(convlab.randn(5, generator=g).numpy(), first)
    with pytest.raises(TypeError):
        g.set_state(state.float())
    with pytest.raises(ValueError):
        g.set_state(state[:-1])


def test_default_generator_state_and_manual_seed():
    convlab.manual_seed(21)
    a = convlab.randn(4).numpy()
    convlab.manual_seed(21)
    state = convlab.default_generator.get_state()
    assert np.array_equal(convlab.randn(4).numpy(), a)
    convlab.set_rng_state(state)  # the tensor form of torch.set_rng_state
    assert np.array_equal(convlab.randn(4).numpy(), a)
    saved = convlab.get_rng_state()  # the dict form checkpoints store keeps working
    b = convlab.rand(3).numpy()
    convlab.set_rng_state(saved)
    assert np.array_equal(convlab.rand(3).numpy(), b)


def test_random_split_with_generator_and_fractions():
    data = list(range(10))
    ours = random_split(data, [0.7, 0.3], generator=convlab.Generator().manual_seed(42))
    again = random_split(data, [0.7, 0.3], generator=convlab.Generator().manual_seed(42))
    theirs = torch.utils.data.random_split(data, [0.7, 0.3], torch.Generator().manual_seed(42))
    assert [len(s) for s in ours] == [len(s) for s in theirs] == [7, 3]
    assert [list(s) for s in ours] == [list(s) for s in again]
    assert sorted(list(ours[0]) + list(ours[1])) == data
    sizes = [len(s) for s in random_split(range(11), [0.5, 0.25, 0.25])]
    ref = [len(s) for s in torch.utils.data.random_split(range(11), [0.5, 0.25, 0.25])]
    assert sizes == ref


def _order(loader):
    return [batch[0].tolist() for batch in loader]


def test_loader_and_sampler_take_a_generator():
    ds = TensorDataset(convlab.arange(12))
    first = _order(DataLoader(ds, 4, shuffle=True, generator=convlab.Generator().manual_seed(0)))
    second = _order(DataLoader(ds, 4, shuffle=True, generator=convlab.Generator().manual_seed(0)))
    assert first == second and sorted(sum(first, [])) == list(range(12))
    g = convlab.Generator().manual_seed(9)
    sampler = RandomSampler(range(8), generator=g)
    a = list(sampler)
    g.manual_seed(9)  # re-seeding the generator restarts the sampler's stream, as in PyTorch
    epoch1, epoch2 = list(sampler), list(sampler)
    assert epoch1 == a and sorted(a) == list(range(8))
    assert epoch2 != epoch1  # the shared stream moves on between epochs
    ref = list(torch.utils.data.RandomSampler(range(8), generator=torch.Generator().manual_seed(9)))
    assert sorted(ref) == sorted(a)


class _SeedReport(Dataset):
    """Each sample: the worker's seed and what ``convlab.initial_seed()`` says there."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return get_worker_info().seed, convlab.initial_seed()


def test_initial_seed_in_a_worker_is_the_workers_seed():
    # PyTorch programs seed NumPy in worker_init_fn with torch.initial_seed() % 2**32
    loader = DataLoader(_SeedReport(), batch_size=None, num_workers=2, generator=3)
    pairs = [(int(a), int(b)) for a, b in loader]
    assert all(a == b for a, b in pairs) and len({a for a, _ in pairs}) == 2
    convlab.manual_seed(17)
    assert convlab.initial_seed() == 17  # the main process keeps its own


def test_generator_draws_for_the_gpu(backend):
    device = backend.name
    on_device = convlab.randn(3, 2, generator=convlab.Generator().manual_seed(4), device=device)
    on_cpu = convlab.randn(3, 2, generator=convlab.Generator().manual_seed(4))
    assert on_device.device == device
    assert np.array_equal(on_device.numpy(), on_cpu.numpy())
    perm = convlab.randperm(6, generator=convlab.Generator().manual_seed(4), device=device)
    assert perm.device == device and sorted(perm.tolist()) == list(range(6))

"""Dropout keyed by global sample index (convlab.distributed.sample_indexed_dropout): masks
against a NumPy reference of the documented streams, independent of how the batch is split;
gradients; the default path unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
import convlab.distributed as dist
from convlab import _random
from convlab.nn import functional as F

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def reference_keep(seed: int, n: int, p: float) -> np.ndarray:
    """The backends' documented dropout stream: element 2j / 2j+1 keep the low / high 32 bits
    of SplitMix64 number j (seeded by ``seed``) when they reach p * 2**32."""
    threshold = min(round(p * 2**32), 2**32 - 1)
    keep = np.empty(n, bool)
    for i in range(n):
        z = mix((seed + (i // 2 + 1) * GOLDEN) & M64)
        half = (z & 0xFFFFFFFF) if i % 2 == 0 else z >> 32
        keep[i] = half >= threshold
    return keep


def reference_sample_keep(seed: int, index: int, n: int, p: float) -> np.ndarray:
    return reference_keep(mix((seed + (index + 1) * GOLDEN) & M64), n, p)


def call_seed(seed: int) -> int:
    """The seed the next dropout call draws after ``manual_seed(seed)``."""
    convlab.manual_seed(seed)
    return _random.draw_seed()


def test_masks_follow_the_global_index():
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32) + 3
    drawn = call_seed(4)
    convlab.manual_seed(4)
    with dist.sample_indexed_dropout([10, 3, 7, 0, 1, 2]):
        out = F.dropout(convlab.tensor(x), 0.4).numpy()
    for j, index in enumerate([10, 3, 7, 0, 1, 2]):
        keep = reference_sample_keep(drawn, index, 6, 0.4).reshape(2, 3)
        np.testing.assert_allclose(out[j], np.where(keep, x[j] / 0.6, 0), rtol=1e-6)


@pytest.mark.parametrize("split", ["halves", "strided", "thirds"])
def test_the_split_does_not_change_the_masks(split):
    x = np.random.default_rng(1).standard_normal((12, 5)).astype(np.float32) + 3
    convlab.manual_seed(9)
    with dist.sample_indexed_dropout(0):
        whole = F.dropout(convlab.tensor(x), 0.5).numpy()
    parts = {
        "halves": [list(range(6)), list(range(6, 12))],
        "strided": [list(range(0, 12, 2)), list(range(1, 12, 2))],
        "thirds": [list(range(r, 12, 3)) for r in range(3)],
    }[split]
    for rows in parts:
        convlab.manual_seed(9)  # every rank's generator is in the same state
        with dist.sample_indexed_dropout(rows):
            part = F.dropout(convlab.tensor(x[rows]), 0.5).numpy()
        np.testing.assert_array_equal(part, whole[rows])
    assert 0 < (whole == 0).mean() < 1


def test_gradient_and_batch_dim():
    x = np.random.default_rng(2).standard_normal((3, 4, 5))  # time-major: batch on dim 1
    drawn = call_seed(1)
    convlab.manual_seed(1)
    xs = convlab.tensor(x, requires_grad=True)
    with dist.sample_indexed_dropout(range(20, 24), dim=1):
        y = F.dropout(xs, 0.3)
    upstream = np.random.default_rng(3).standard_normal(x.shape)
    (y * convlab.tensor(upstream)).sum().backward()
    for j in range(4):
        keep = reference_sample_keep(drawn, 20 + j, 15, 0.3).reshape(3, 5)
        np.testing.assert_allclose(xs.grad.numpy()[:, j], np.where(keep, upstream[:, j] / 0.7, 0))
        np.testing.assert_allclose(y.numpy()[:, j], np.where(keep, x[:, j] / 0.7, 0))


def test_channel_dropout_keyed_too():
    x = np.ones((4, 6, 2, 2), np.float32)
    convlab.manual_seed(5)
    with dist.sample_indexed_dropout(0):
        whole = F.dropout2d(convlab.tensor(x), 0.5).numpy()
    convlab.manual_seed(5)
    with dist.sample_indexed_dropout([2, 3]):
        part = F.dropout2d(convlab.tensor(x[2:]), 0.5).numpy()
    np.testing.assert_array_equal(part, whole[2:])


def test_default_path_unchanged_and_one_seed_per_call():
    x = np.random.default_rng(4).standard_normal(9).astype(np.float32)
    drawn = call_seed(3)
    convlab.manual_seed(3)
    out = F.dropout(convlab.tensor(x), 0.5).numpy()
    np.testing.assert_allclose(out, np.where(reference_keep(drawn, 9, 0.5), x * 2, 0))
    convlab.manual_seed(3)
    with dist.sample_indexed_dropout(0):
        F.dropout(convlab.tensor(x.reshape(3, 3)), 0.5)
    after_keyed = _random.draw_seed()
    convlab.manual_seed(3)
    F.dropout(convlab.tensor(x), 0.5)
    assert _random.draw_seed() == after_keyed


def test_errors():
    with dist.sample_indexed_dropout([0, 1]):
        with pytest.raises(ValueError, match="the batch has 3 samples along dim 0, but 2"):
            F.dropout(convlab.ones(3, 2), 0.5)
    with pytest.raises(TypeError, match="indices: expected an int offset or a 1-D sequence"):
        with dist.sample_indexed_dropout([0.5, 1.0]):
            pass
    with pytest.raises(ValueError, match="non-negative offset"):
        with dist.sample_indexed_dropout(-1):
            pass

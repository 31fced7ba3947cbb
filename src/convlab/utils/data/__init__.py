"""``torch.utils.data`` under PyTorch's names: ``import convlab.utils.data as data``.

The same objects as :mod:`convlab.data` (datasets, samplers, :class:`DataLoader`,
:func:`default_collate`, :func:`get_worker_info`), so ``from torch.utils.data import
DataLoader`` becomes ``from convlab.utils.data import DataLoader``.
"""

from __future__ import annotations

from convlab.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from convlab.data.loader import (
    DataLoader,
    WorkerInfo,
    default_collate,
    default_convert,
    get_worker_info,
)
from convlab.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from convlab.utils.data.distributed import DistributedSampler

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "Subset",
    "ConcatDataset",
    "ChainDataset",
    "random_split",
    "DataLoader",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "WorkerInfo",
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "BatchSampler",
    "DistributedSampler",
]

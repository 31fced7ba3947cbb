"""Data: datasets, the :class:`DataLoader`, transforms, CIFAR-10 / MNIST readers, and OHLCV
tables, stock-chart images and chart sets (the chart parts need ``convlab[data]``)."""

from __future__ import annotations

from convlab.data import transforms
from convlab.data.charts import GEOMETRY, image_geometry, render_charts
from convlab.data.chartset import ChartDataset, ChartSet, ChartSetError
from convlab.data.corpus_pydoc import default_text_corpus
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
    sample_rng,
)
from convlab.data.ohlcv import COLUMNS, OHLCVError, load_ohlcv
from convlab.data.safe_pickle import UnsafePickleError, load_plain_pickle
from convlab.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from convlab.data.sources import load_default_ohlcv, read_jkx_images
from convlab.data.text import Corpus, Dictionary, batchify, get_batch
from convlab.data.vision import (
    CIFAR10,
    CIFAR100,
    MNIST,
    DatasetDownloadError,
    DatasetFormatError,
    DatasetNotFoundError,
    FashionMNIST,
    read_idx,
)

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
    "sample_rng",
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "BatchSampler",
    "transforms",
    "CIFAR10",
    "CIFAR100",
    "MNIST",
    "FashionMNIST",
    "DatasetDownloadError",
    "read_idx",
    "DatasetNotFoundError",
    "DatasetFormatError",
    "UnsafePickleError",
    "load_plain_pickle",
    "load_ohlcv",
    "OHLCVError",
    "COLUMNS",
    "render_charts",
    "image_geometry",
    "GEOMETRY",
    "ChartSet",
    "ChartDataset",
    "ChartSetError",
    "load_default_ohlcv",
    "read_jkx_images",
    "Dictionary",
    "Corpus",
    "batchify",
    "get_batch",
    "default_text_corpus",
]

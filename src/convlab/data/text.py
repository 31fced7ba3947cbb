"""Word-level language-model data: needle hw4's (and pytorch/examples' ``word_language_model``)
:class:`Dictionary`, :class:`Corpus`, :func:`batchify` and :func:`get_batch`.

A corpus folder holds three plain-text files, one sentence per line, words separated by
white space, in the Penn Treebank layout: ``ptb.train.txt``, ``ptb.valid.txt`` and
``ptb.test.txt`` (or ``train.txt``, ``valid.txt``, ``test.txt``, as needle hw4 and
pytorch/examples store them). Nothing is downloaded; :func:`default_text_corpus` builds an
offline one from the documentation Python ships.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from convlab import _validate

__all__ = ["Dictionary", "Corpus", "batchify", "get_batch", "SPLITS", "EOS"]

#: The token :class:`Corpus` appends to every line (the end of a sentence).
EOS = "<eos>"
#: The three files of a corpus folder, in the order they are read.
SPLITS = ("train", "valid", "test")


class Dictionary:
    """A vocabulary: each word's id in the order words were first added.

    Attributes:
        word2idx: ``{word: id}``.
        idx2word: The words, ``idx2word[id] == word``.
    """

    def __init__(self) -> None:
        self.word2idx: dict[str, int] = {}
        self.idx2word: list[str] = []

    def add_word(self, word: str) -> int:
        """Add ``word`` if it is new and return its id (a known word keeps its id).

        Raises:
            TypeError: If ``word`` is not a str.
        """
        if not isinstance(word, str):
            raise TypeError(f"word: expected a str, got {type(word).__name__}")
        index = self.word2idx.get(word)
        if index is None:
            index = self.word2idx[word] = len(self.idx2word)
            self.idx2word.append(word)
        return index

    def __len__(self) -> int:
        return len(self.idx2word)

    def __repr__(self) -> str:
        return f"Dictionary({len(self)} words)"


def _split_file(base_dir: Path, split: str) -> Path:
    """The file of ``split`` in ``base_dir``: ``ptb.<split>.txt`` or ``<split>.txt``."""
    names = (f"ptb.{split}.txt", f"{split}.txt")
    for name in names:
        if (base_dir / name).is_file():
            return base_dir / name
    raise FileNotFoundError(
        f"base_dir: no {split} file in {base_dir} (expected {names[0]} or {names[1]})"
    )


class Corpus:
    """The train, validation and test token ids of a corpus folder, over one shared
    :class:`Dictionary`.

    Every line becomes its words followed by ``"<eos>"``; words get ids in the order they are
    first seen, reading ``train``, then ``valid``, then ``test``.

    Args:
        base_dir: A folder with ``ptb.train.txt`` / ``ptb.valid.txt`` / ``ptb.test.txt`` (or
            ``train.txt`` / ``valid.txt`` / ``test.txt``).
        max_lines: Read at most this many lines of each file (None: all).

    Attributes:
        dictionary: The :class:`Dictionary`.
        train: Token ids of the training text, a 1-D int64 NumPy array.
        valid: Token ids of the validation text.
        test: Token ids of the test text.

    Raises:
        FileNotFoundError: Naming the folder and the file names looked for.
        ValueError: If a file holds no words (naming its path) or is not UTF-8 text.
    """

    def __init__(self, base_dir: Any, max_lines: int | None = None) -> None:
        if max_lines is not None:
            max_lines = _validate.positive(max_lines, "max_lines", None)
        folder = Path(os.fspath(base_dir))
        if not folder.is_dir():
            raise FileNotFoundError(f"base_dir: {folder} is not a folder")
        self.dictionary = Dictionary()
        paths = [_split_file(folder, split) for split in SPLITS]
        self.train, self.valid, self.test = (self.tokenize(p, max_lines) for p in paths)

    def tokenize(self, path: Any, max_lines: int | None = None) -> np.ndarray:
        """The ids of the words of the text file at ``path`` (each line ends with ``"<eos>"``),
        adding new words to :attr:`dictionary`.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If it holds no words or is not UTF-8 text.
        """
        ids: list[int] = []
        add = self.dictionary.add_word
        words = 0
        try:
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle):
                    if max_lines is not None and number >= max_lines:
                        break
                    tokens = line.split()
                    words += len(tokens)
                    ids.extend(add(word) for word in tokens)
                    ids.append(add(EOS))
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        if words == 0:
            # an empty split would make every later step (batching, perplexity) meaningless
            raise ValueError(f"{path}: the file holds no words (empty corpus file)")
        return np.asarray(ids, dtype=np.int64)

    def __repr__(self) -> str:
        return (
            f"Corpus({len(self.dictionary)} words; train {len(self.train)}, valid "
            f"{len(self.valid)}, test {len(self.test)} tokens)"
        )


def batchify(data: Any, batch_size: int, device: Any = None, dtype: Any = "int64") -> np.ndarray:
    """Lay a token stream out as ``batch_size`` columns of consecutive tokens.

    The first ``len(data) // batch_size * batch_size`` tokens are kept (the remainder is
    dropped); column ``j`` holds tokens ``j * nbatch`` to ``(j + 1) * nbatch - 1``. The alphabet
    with ``batch_size=4`` gives rows ``a g m s``, ``b h n t``, ..., ``f l r x``. Columns are
    independent sequences to the model.

    Args:
        data: Token ids: a 1-D sequence, NumPy array or tensor.
        batch_size: Number of columns.
        device: Unused (needle hw4's signature); :func:`get_batch` puts batches on a device.
        dtype: NumPy dtype of the result (``"int64"``, what embeddings take).

    Returns:
        A NumPy array of shape ``(nbatch, batch_size)``.

    Raises:
        ValueError: If ``data`` is not 1-D or holds fewer than ``batch_size`` tokens.
    """
    del device  # the array stays on the host: get_batch copies each chunk where it is used
    batch_size = _validate.positive(batch_size, "batch_size", None)
    array = data.numpy() if hasattr(data, "numpy") and not isinstance(data, np.ndarray) else data
    array = np.asarray(array)
    if array.ndim != 1:
        raise ValueError(f"data: expected a 1-D sequence of token ids, got shape {array.shape}")
    nbatch = len(array) // batch_size
    if nbatch == 0:
        raise ValueError(
            f"data: {len(array)} tokens cannot fill one row of batch_size={batch_size} columns"
        )
    # (batch_size, nbatch) rows are the contiguous segments; transposed they become columns
    out = array[: nbatch * batch_size].reshape(batch_size, nbatch).T
    return np.ascontiguousarray(out, dtype=np.dtype(dtype))


def get_batch(
    batches: Any, i: int, bptt: int, device: Any = None, dtype: Any = None
) -> tuple[Any, Any]:
    """The chunk of rows ``i`` to ``i + bptt - 1`` of a :func:`batchify` array and its targets,
    the next token of each position.

    The chunk is shorter than ``bptt`` at the end: ``seq_len = min(bptt, len(batches) - 1 - i)``.

    Args:
        batches: A ``(nbatch, batch_size)`` array from :func:`batchify`.
        i: First row, ``0 <= i < len(batches) - 1``.
        bptt: Rows per chunk (the truncated back-propagation length).
        device: Where the tensors go (None: the CPU).
        dtype: Their dtype (None: that of ``batches``).

    Returns:
        ``(data, target)``: tensors of shape ``(seq_len, batch_size)`` and
        ``(seq_len * batch_size,)``, ``target`` being rows ``i + 1`` to ``i + seq_len`` flattened.

    Raises:
        IndexError: If ``i`` is out of range (naming the bound).
        ValueError: If ``batches`` is not 2-D.
    """
    import convlab

    array = batches.numpy() if isinstance(batches, convlab.Tensor) else np.asarray(batches)
    if array.ndim != 2:
        raise ValueError(f"batches: expected a 2-D (nbatch, batch_size) array, got {array.shape}")
    bptt = _validate.positive(bptt, "bptt", None)
    i = _validate.integer(i, "i", -(2**62), None)
    if not 0 <= i < len(array) - 1:
        raise IndexError(
            f"i: expected 0 <= i < {len(array) - 1} (len(batches) - 1: the last row has no "
            f"next token), got {i}"
        )
    seq_len = min(bptt, len(array) - 1 - i)
    data = array[i : i + seq_len]
    target = array[i + 1 : i + 1 + seq_len].reshape(-1)
    return (
        convlab.tensor(data, device=device, dtype=dtype),
        convlab.tensor(target, device=device, dtype=dtype),
    )

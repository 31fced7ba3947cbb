"""The word-level language-model data: Dictionary, Corpus, batchify, get_batch (needle hw4's
semantics, worked out by hand here) and the bundled default corpus."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest

import convlab
from convlab.data import Corpus, Dictionary, batchify, corpus_pydoc, default_text_corpus, get_batch


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


PTB_LIKE = {
    "ptb.train.txt": " the cat sat\n the dog  sat down \n",
    "ptb.valid.txt": " a cat\n",
    "ptb.test.txt": " the bird sat\n\n",
}


# ---------------------------------------------------------------- Dictionary
def test_dictionary_ids_in_first_seen_order():
    d = Dictionary()
    assert [d.add_word(w) for w in ["b", "a", "b", "c", "a"]] == [0, 1, 0, 2, 1]
    assert d.idx2word == ["b", "a", "c"]
    assert d.word2idx == {"b": 0, "a": 1, "c": 2}
    assert len(d) == 3


def test_dictionary_refuses_non_strings():
    with pytest.raises(TypeError, match="word: expected a str, got int"):
        Dictionary().add_word(3)


# ---------------------------------------------------------------- Corpus
def test_corpus_ids_and_eos(tmp_path):
    corpus = Corpus(_write(tmp_path, PTB_LIKE))
    # ids by hand: train first, then valid, then test; <eos> closes every line
    words = ["the", "cat", "sat", "<eos>", "dog", "down", "a", "bird"]
    assert corpus.dictionary.idx2word == words
    assert corpus.train.tolist() == [0, 1, 2, 3, 0, 4, 2, 5, 3]
    assert corpus.valid.tolist() == [6, 1, 3]
    # an empty line is one <eos>, as in hw4 and pytorch/examples
    assert corpus.test.tolist() == [0, 7, 2, 3, 3]
    assert corpus.train.dtype == np.int64


def test_corpus_reads_hw4_file_names_and_max_lines(tmp_path):
    files = {name.removeprefix("ptb."): text for name, text in PTB_LIKE.items()}
    corpus = Corpus(_write(tmp_path, files), max_lines=1)
    assert corpus.train.tolist() == [0, 1, 2, 3]
    assert corpus.valid.tolist() == [4, 1, 3]
    assert corpus.test.tolist() == [0, 5, 2, 3]


def test_corpus_missing_folder_and_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        Corpus(tmp_path / "nope")
    files = dict(PTB_LIKE)
    del files["ptb.valid.txt"]
    folder = _write(tmp_path / "c", files)
    with pytest.raises(FileNotFoundError, match=r"no valid file .*ptb\.valid\.txt or valid"):
        Corpus(folder)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_corpus_empty_file_names_path(tmp_path, text):
    folder = _write(tmp_path, {**PTB_LIKE, "ptb.test.txt": text})
    with pytest.raises(ValueError, match=r"ptb\.test\.txt: the file holds no words"):
        Corpus(folder)


def test_corpus_not_utf8_names_path(tmp_path):
    folder = _write(tmp_path, PTB_LIKE)
    (folder / "ptb.train.txt").write_bytes(b"caf\xe9 ok\n")
    with pytest.raises(ValueError, match=r"ptb\.train\.txt: not UTF-8"):
        Corpus(folder)


def test_corpus_bad_max_lines(tmp_path):
    with pytest.raises(ValueError, match="max_lines"):
        Corpus(_write(tmp_path, PTB_LIKE), max_lines=0)


# ---------------------------------------------------------------- batchify / get_batch
ALPHABET = list(range(26))  # a..z as 0..25


def test_batchify_alphabet_columns():
    got = batchify(ALPHABET, 4, device=None, dtype="int64")
    # hw4's picture: columns a-f, g-l, m-r, s-x; y and z dropped
    expected = np.array([[r + 6 * c for c in range(4)] for r in range(6)])
    assert got.shape == (6, 4)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


def test_batchify_takes_arrays_tensors_and_dtype():
    data = np.arange(10)
    np.testing.assert_array_equal(batchify(convlab.tensor(data), 3), batchify(list(data), 3))
    got = batchify(data, 2, dtype="float32")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[0, 5], [1, 6], [2, 7], [3, 8], [4, 9]])


def test_batchify_errors():
    with pytest.raises(ValueError, match="3 tokens cannot fill one row of batch_size=4"):
        batchify([1, 2, 3], 4)
    with pytest.raises(ValueError, match="batch_size"):
        batchify([1, 2, 3], 0)
    with pytest.raises(ValueError, match=r"data: expected a 1-D"):
        batchify(np.zeros((2, 3)), 1)


def test_get_batch_hw4_example():
    batches = batchify(ALPHABET, 4)
    data, target = get_batch(batches, 0, 2)
    assert isinstance(data, convlab.Tensor)
    # a g m s / b h n t, and the next letters b h n t c i o u flattened
    np.testing.assert_array_equal(data.numpy(), [[0, 6, 12, 18], [1, 7, 13, 19]])
    np.testing.assert_array_equal(target.numpy(), [1, 7, 13, 19, 2, 8, 14, 20])
    assert data.dtype == convlab.int64


@pytest.mark.parametrize("i,bptt,seq_len", [(0, 35, 5), (3, 2, 2), (4, 2, 1), (2, 3, 3)])
def test_get_batch_shapes_at_the_end(i, bptt, seq_len):
    batches = batchify(ALPHABET, 4)  # 6 rows
    data, target = get_batch(batches, i, bptt)
    assert tuple(data.shape) == (seq_len, 4)
    assert tuple(target.shape) == (seq_len * 4,)
    # every target is the token after its input within the column (the alphabet's next letter)
    np.testing.assert_array_equal(target.numpy(), data.numpy().reshape(-1) + 1)


def test_get_batch_device_dtype():
    data, target = get_batch(batchify(ALPHABET, 4), 1, 2, device="cpu", dtype=convlab.float32)
    assert data.dtype == convlab.float32 and target.dtype == convlab.float32
    assert data.device.type == "cpu"


def test_get_batch_errors():
    batches = batchify(ALPHABET, 4)
    with pytest.raises(IndexError, match=r"expected 0 <= i < 5 .* got 5"):
        get_batch(batches, 5, 2)
    with pytest.raises(IndexError, match="got -1"):
        get_batch(batches, -1, 2)
    with pytest.raises(ValueError, match="bptt"):
        get_batch(batches, 0, 0)
    with pytest.raises(ValueError, match="2-D"):
        get_batch(np.arange(5), 0, 2)


# ---------------------------------------------------------------- the bundled corpus
def test_default_corpus_is_ptb_like(tmp_path):
    folder = default_text_corpus(tmp_path)
    assert folder.parent == tmp_path
    texts = {p: (folder / f"ptb.{p}.txt").read_text() for p in ("train", "valid", "test")}
    allowed = set(string.ascii_lowercase + "' \n") | set("N<unk>")
    for part, text in texts.items():
        assert set(text) <= allowed, part
        for line in text.splitlines():
            assert len(line.split()) >= 2
    train_words = texts["train"].split()
    assert len(train_words) > 20_000
    # valid and test use only train's vocabulary; a word once in train is <unk>
    vocabulary = set(train_words)
    assert set(texts["valid"].split()) <= vocabulary
    assert set(texts["test"].split()) <= vocabulary
    assert len(vocabulary) <= corpus_pydoc.VOCAB_LIMIT
    counts: dict[str, int] = {}
    for w in train_words:
        counts[w] = counts.get(w, 0) + 1
    assert min(counts.values()) >= corpus_pydoc.MIN_COUNT
    # the same folder again: built once, deterministic
    assert default_text_corpus(tmp_path) == folder
    assert len(list(tmp_path.iterdir())) == 1
    corpus = Corpus(folder)
    assert len(corpus.train) == len(train_words) + texts["train"].count("\n")


def test_default_corpus_tokenisation_rules():
    assert corpus_pydoc._words("The clause\u2019s 2 rules (3.5 cases) aren't x_y.") == [
        "the",
        "clause",
        "'s",
        "N",
        "rules",
        "N",
        "cases",
        "aren",
        "'t",
        "x",
        "y",
    ]
    topic = 'Title\n*****\n\nThis is prose, it reads well.  Second one here!\n\n   x ::= "a" | b\n'
    assert corpus_pydoc._prose_paragraphs(topic) == [
        "This is prose, it reads well.  Second one here!"
    ]

"""The bundled default text corpus: Python's own documentation, in the Penn Treebank's form.

Every Python installation ships the language reference's topics as plain English text
(``pydoc_data.topics``, what ``help("while")`` shows). :func:`default_text_corpus` turns them
into a PTB-style corpus folder, so ``convlab train ptb`` runs with no download:

* prose only: heading underlines and paragraphs that are mostly symbols (code, grammar
  rules, signatures) are left out;
* one sentence per line, lower-case words, numbers as ``N``, possessive and contraction
  endings split off (``clause's`` -> ``clause 's``), punctuation dropped -- as in the PTB
  files of Mikolov et al.;
* each sentence once (the topics repeat passages: a repeat in valid or test would be a
  sentence the model trained on);
* the sentences cut into blocks of 50; of every ten blocks, eight go to train, one to valid
  and one to test (deterministic, and every split samples the whole documentation);
* words seen fewer than twice in train become ``<unk>`` (at most 10,000 words kept, the PTB's
  vocabulary size), so valid and test have no word the model never trained on.

The text differs between Python versions, so the folder's name carries the Python version and
a hash of its content. It is written once into the user's cache folder (``$CONVLAB_CACHE``,
else ``$XDG_CACHE_HOME/convlab``, else ``~/.cache/convlab``), atomically.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from convlab._atomic import fsync_dir, make_temp_dir

__all__ = ["default_text_corpus", "pydoc_sentences", "VOCAB_LIMIT", "MIN_COUNT", "UNK"]

#: The token that stands for every word outside the vocabulary.
UNK = "<unk>"
#: Most words kept (the Penn Treebank's vocabulary size).
VOCAB_LIMIT = 10_000
#: Words seen fewer times than this in train become ``<unk>``.
MIN_COUNT = 2
_BLOCK = 50  # sentences per block of the train / valid / test split
_SPLIT_OF_BLOCK = ("train",) * 8 + ("valid", "test")

_WORD = re.compile(r"[a-z]+|'[a-z]+|\d+(?:[.,]\d+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_UNDERLINE = re.compile(r"^\s*([*=\-~^\"'#+])\1{2,}\s*$")


def _is_prose(paragraph: str) -> bool:
    """Whether a paragraph reads as English: code, grammar rules and signatures are mostly
    symbols, identifiers and brackets."""
    if ">>>" in paragraph or "::=" in paragraph:
        return False
    plain = sum(c.isalpha() or c.isspace() or c in ".,;:'\"\u2019()-" for c in paragraph)
    return len(paragraph.split()) >= 4 and plain >= 0.95 * len(paragraph)


def _prose_paragraphs(text: str) -> list[str]:
    """The prose paragraphs of a documentation topic (lines joined; heading underlines,
    code, grammar rules and signatures left out)."""
    paragraphs: list[str] = []
    lines: list[str] = []
    for line in text.splitlines() + [""]:
        if not line.strip() or _UNDERLINE.match(line):
            paragraph = " ".join(lines)
            if lines and _is_prose(paragraph):
                paragraphs.append(paragraph)
            lines = []
        else:
            lines.append(line.strip())
    return paragraphs


def _words(sentence: str) -> list[str]:
    text = sentence.lower().replace("\u2019", "'").replace("\u2018", "'")
    return ["N" if w[0].isdigit() else w for w in _WORD.findall(text)]


def pydoc_sentences() -> list[list[str]]:
    """The sentences of Python's documentation topics (``pydoc_data.topics``, topics in
    sorted order), each a list of lower-case words; sentences of fewer than two words are
    left out.

    Raises:
        ImportError: If this Python was installed without ``pydoc_data``.
    """
    from pydoc_data.topics import topics

    sentences = []
    for name in sorted(topics):
        for paragraph in _prose_paragraphs(topics[name]):
            for sentence in _SENTENCE_END.split(paragraph):
                words = _words(sentence)
                if len(words) >= 2:
                    sentences.append(words)
    return sentences


def _split(sentences: list[list[str]]) -> dict[str, list[list[str]]]:
    """Blocks of sentences dealt to train / valid / test, eight / one / one of every ten."""
    splits: dict[str, list[list[str]]] = {"train": [], "valid": [], "test": []}
    for start in range(0, len(sentences), _BLOCK):
        part = _SPLIT_OF_BLOCK[(start // _BLOCK) % len(_SPLIT_OF_BLOCK)]
        splits[part].extend(sentences[start : start + _BLOCK])
    return splits


def _vocabulary(train: list[list[str]]) -> set[str]:
    counts = collections.Counter(w for sentence in train for w in sentence)
    # most frequent first, ties alphabetical: the same vocabulary on every run
    ranked = sorted((w for w, c in counts.items() if c >= MIN_COUNT), key=lambda w: (-counts[w], w))
    return set(ranked[: VOCAB_LIMIT - 1])  # one place is <unk>'s


def corpus_texts() -> dict[str, str]:
    """The text of the three files of the default corpus, ``{"train": ..., "valid": ...,
    "test": ...}`` (one sentence per line)."""
    # the topics repeat whole passages (several describe the same special methods): a
    # sentence seen before is dropped, or valid and test would hold sentences of train
    unique = list({tuple(sentence): sentence for sentence in pydoc_sentences()}.values())
    splits = _split(unique)
    vocabulary = _vocabulary(splits["train"])
    return {
        part: "".join(
            " ".join(w if w in vocabulary else UNK for w in sentence) + "\n"
            for sentence in sentences
        )
        for part, sentences in splits.items()
    }


def _cache_root() -> Path:
    if os.environ.get("CONVLAB_CACHE"):
        return Path(os.environ["CONVLAB_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "convlab"
    return Path.home() / ".cache" / "convlab"


def default_text_corpus(cache_dir: Any = None) -> Path:
    """A folder holding the bundled corpus as ``ptb.train.txt``, ``ptb.valid.txt`` and
    ``ptb.test.txt`` (read it with :class:`convlab.data.Corpus`).

    Built from Python's documentation topics (see the module's notes) the first time and
    kept in the cache folder; a cache that cannot be written falls back to the temporary
    folder.

    Args:
        cache_dir: Where to keep it (default: ``$CONVLAB_CACHE``, ``$XDG_CACHE_HOME/convlab``
            or ``~/.cache/convlab``).

    Returns:
        The folder, named ``pydoc-text-py<version>-<hash>``.
    """
    texts = corpus_texts()
    digest = hashlib.sha256()
    for part in ("train", "valid", "test"):
        digest.update(texts[part].encode())
    name = f"pydoc-text-py{sys.version_info[0]}.{sys.version_info[1]}-{digest.hexdigest()[:12]}"
    roots = [Path(os.fspath(cache_dir))] if cache_dir is not None else [_cache_root()]
    roots.append(Path(tempfile.gettempdir()) / "convlab")
    for root in roots:
        folder = root / name
        if all((folder / f"ptb.{p}.txt").is_file() for p in texts):
            return folder
        try:
            root.mkdir(parents=True, exist_ok=True)
            # filled beside its final name, then renamed: a reader never sees half a corpus
            temp = make_temp_dir(root, ".pydoc-text-")
            for part, text in texts.items():
                (temp / f"ptb.{part}.txt").write_text(text, encoding="utf-8")
            try:
                os.rename(temp, folder)
            except OSError:
                if not folder.is_dir():  # not another process finishing first
                    raise
                for child in temp.iterdir():
                    child.unlink()
                temp.rmdir()
            fsync_dir(root)
            return folder
        except OSError:
            if cache_dir is not None:
                raise
            continue
    raise OSError(f"cannot write the default text corpus into {roots[0]} or {roots[-1]}")

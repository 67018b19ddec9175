"""Word-level text for language-model spaces: PTB-style corpora, their vocabulary, token batches.

A corpus is three files of one sentence per line, words separated by spaces (the Penn Treebank
of Mikolov et al. 2010 as distributed in ``simple-examples``: ``ptb.train.txt``,
``ptb.valid.txt``, ``ptb.test.txt``; lower case, numbers as ``N``, rare words as ``<unk>``).
Reading follows the reference of NAS-Bench-NLP (``fmsnew/nas-bench-nlp-release``, ``data.py``
``Corpus``, the AWD-LSTM reader) exactly, because the token ids, and therefore the batches, of
the benchmark depend on it:

- every line is ``line.split() + ["<eos>"]``;
- ids are given in order of first appearance, over the train file, then valid, then test (so
  the id of a word depends on the files, and ``<eos>`` is the id after the first line's words);
- :func:`stream_batch` is the reference's ``batchify`` (the id stream cut into ``N`` contiguous
  streams, the remainder dropped) followed by ``get_batch`` (``T`` consecutive positions of every
  stream, the targets one position later), transposed to zcjax's ``(N, T)``.

Shipped with the package (no download, see ``zcjax/resources/PROVENANCE.md``): a public-domain
English text, the Jargon File 4.4.7 (Raymond et al.), in the same format,
``jargon.{train,valid,test}.txt`` (:func:`bundled_corpus`), prepared by :func:`ptb_style_lines`
and :func:`limit_vocabulary`. The user's PTB files are read with :func:`load_ptb` (from the
workspace's ``data/ptb/``, see WORKSPACE.md).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib.resources
import os
import re
import unicodedata
from typing import Iterable, Sequence

import jax.numpy as jnp
import numpy as np

from zcjax.data import TokenBatch
from zcjax.validation import cap, check_int

__all__ = ["EOS", "UNK", "SPLITS", "Corpus", "read_corpus", "bundled_corpus", "load_ptb",
           "stream_batch", "ptb_style_lines", "limit_vocabulary"]

#: The end-of-sentence token the reader appends to every line.
EOS = "<eos>"
#: The token of words outside the vocabulary (written in the files themselves).
UNK = "<unk>"
#: The three files of a corpus, in the order the vocabulary is built.
SPLITS = ("train", "valid", "test")

#: Bundled corpus: ``zcjax/resources/<BUNDLED>.{train,valid,test}.txt``.
BUNDLED = "jargon"


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Three id streams and the vocabulary that numbers them.

    Attributes:
      words: the vocabulary, ``words[i]`` is the word of id ``i`` (first-appearance order).
      train, valid, test: read-only int32 id streams, one ``<eos>`` after every line.
      source: where the files were read from (for messages and provenance).
    """

    words: tuple[str, ...]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    source: str

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @functools.cached_property
    def ids(self) -> dict[str, int]:
        """``{word: id}``."""
        return {w: i for i, w in enumerate(self.words)}

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"unknown split {cap(repr(name))}; expected one of {SPLITS}")
        return getattr(self, name)

    def encode(self, words: Iterable[str]) -> np.ndarray:
        """Ids of words (a word outside the vocabulary is a ``KeyError`` naming it)."""
        ids = self.ids
        try:
            return np.array([ids[w] for w in words], np.int32)
        except KeyError as e:
            raise KeyError(f"{cap(str(e.args[0]))!r} is not in the vocabulary of "
                           f"{cap(self.source)}") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[int(i)] for i in ids]


def _read_lines(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            return [line.split() + [EOS] for line in f]
    except FileNotFoundError:
        raise FileNotFoundError(f"corpus file not found: {cap(path, 300)}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{cap(path, 300)} is not UTF-8 text ({e.reason} at byte "
                         f"{e.start})") from None


def read_corpus(paths: Sequence["str | os.PathLike"], source: str | None = None) -> Corpus:
    """Reads the train, valid and test files (in that order) as the reference's ``Corpus``.

    Raises:
      FileNotFoundError: a missing file, named.
      ValueError: not three paths, a file that is not UTF-8 or holds no words.
    """
    paths = [os.fspath(p) for p in paths]
    if len(paths) != len(SPLITS):
        raise ValueError(f"a corpus is {len(SPLITS)} files ({', '.join(SPLITS)}), got "
                         f"{len(paths)}")
    vocab: dict[str, int] = {}
    streams = []
    for path in paths:
        lines = _read_lines(path)
        if not any(len(line) > 1 for line in lines):
            raise ValueError(f"{cap(path, 300)} holds no words")
        ids = np.array([vocab.setdefault(w, len(vocab)) for line in lines for w in line],
                       np.int32)
        ids.setflags(write=False)
        streams.append(ids)
    return Corpus(tuple(vocab), *streams, source=source or os.path.dirname(paths[0]))


@functools.lru_cache(maxsize=None)
def bundled_corpus() -> Corpus:
    """The bundled public-domain text (Jargon File 4.4.7, PTB-style; ``PROVENANCE.md``)."""
    folder = importlib.resources.files("zcjax.resources")
    with importlib.resources.as_file(folder) as root:
        return read_corpus([root / f"{BUNDLED}.{s}.txt" for s in SPLITS],
                           source=f"the bundled {BUNDLED} text")


#: File names of a PTB folder: Mikolov's ``simple-examples`` names, or the plain names of
#: NAS-Bench-NLP's ``data/ptb`` (``datasets.zip``).
PTB_NAMES = (tuple(f"ptb.{s}.txt" for s in SPLITS), tuple(f"{s}.txt" for s in SPLITS))


def load_ptb(root: "str | os.PathLike") -> Corpus:
    """The user's Penn Treebank from ``root`` (or ``root/ptb``).

    Either naming is read: ``ptb.train.txt, ptb.valid.txt, ptb.test.txt`` (Mikolov's
    ``simple-examples/data``) or ``train.txt, valid.txt, test.txt`` (NAS-Bench-NLP's
    ``data/ptb``). The standard files give 10,000 words (``<eos>`` included).

    Raises:
      FileNotFoundError: naming the files looked for.
    """
    root = os.fspath(root)
    for folder in (os.path.join(root, "ptb"), root):
        for names in PTB_NAMES:
            paths = [os.path.join(folder, n) for n in names]
            if all(os.path.isfile(p) for p in paths):
                return read_corpus(paths, source=folder)
    raise FileNotFoundError(
        f"no Penn Treebank under {cap(root, 300)}: expected {', '.join(PTB_NAMES[0])} (or "
        f"{', '.join(PTB_NAMES[1])}) in it or in its 'ptb' folder")


def stream_batch(ids: np.ndarray, size: int, seq_len: int, start: int = 0) -> TokenBatch:
    """``size`` sequences of ``seq_len`` tokens, as the reference's ``batchify`` + ``get_batch``.

    The stream is cut into ``size`` contiguous parts of ``len(ids) // size`` tokens (the rest is
    dropped); sequence ``n`` is part ``n`` at positions ``start .. start + seq_len - 1`` and its
    labels are the tokens one position later.

    Raises:
      ValueError: non-integer or non-positive sizes, or a stream too short for them.
    """
    size = check_int(size, "batch size", 1)
    seq_len = check_int(seq_len, "sequence length", 1)
    start = check_int(start, "start", 0)
    ids = np.asarray(ids)
    per_stream = ids.shape[0] // size
    if start + seq_len + 1 > per_stream:
        raise ValueError(f"{ids.shape[0]} tokens make {size} streams of {per_stream}; a "
                         f"sequence of {seq_len} from position {start} needs "
                         f"{start + seq_len + 1} per stream")
    streams = ids[:per_stream * size].reshape(size, per_stream)
    tokens = streams[:, start:start + seq_len]
    labels = streams[:, start + 1:start + seq_len + 1]
    return TokenBatch(jnp.asarray(tokens, jnp.int32), jnp.asarray(labels, jnp.int32))


# -- preparing a PTB-style text (how the bundled files were made) -----------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TOKEN = re.compile(r"[a-z]+|'[a-z]+|[0-9][0-9,.]*")


def ptb_style_lines(text: str) -> list[str]:
    """Sentences of ``text`` in PTB style: one per line, lower case, words only, numbers as N.

    Unicode is folded to ASCII (NFKD, other characters dropped), sentences end at ``.``,
    ``!`` or ``?`` followed by white space, clitics become their own tokens (``it's`` ->
    ``it 's``), every number becomes ``N`` and every other punctuation mark is dropped.
    Sentences without words are left out. (Close to, not identical with, the PTB's own
    tokenisation, which the benchmark's files already have.)
    """
    text = text.replace("\u2019", "'")  # the typographic apostrophe of "it’s"
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    lines = []
    for sentence in _SENTENCE_END.split(" ".join(ascii_text.split())):
        words = ["N" if t[0].isdigit() else t for t in _TOKEN.findall(sentence)]
        if words:
            lines.append(" ".join(words))
    return lines


def limit_vocabulary(lines: Sequence[str], size: int) -> list[str]:
    """``lines`` with every word outside the ``size - 2`` most frequent replaced by ``<unk>``.

    With ``<unk>`` and the reader's ``<eos>`` the vocabulary then has at most ``size`` words
    (10,000 makes it PTB's size). Ties in frequency are broken alphabetically.
    """
    size = check_int(size, "vocabulary size", 3)
    counts = collections.Counter(w for line in lines for w in line.split())
    counts.pop(UNK, None)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    keep = {w for w, _ in ranked[:size - 2]}
    return [" ".join(w if w in keep else UNK for w in line.split()) for line in lines]

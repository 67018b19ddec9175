"""The token batches NAS-Bench-NLP networks are scored on.

:func:`scoring_batch` is the batch of the space's reference zero-cost study (epsilon,
``egracheva/epsinas`` ``NAS-Bench-NLP/Reproduce.ipynb``): the train split cut into 256 streams
(``batchify(corpus.train, 256)``) and the first 70 tokens (``bptt``) of each
(``get_batch(train_eval_data, 0, ...)``), with their next tokens as labels. Its text is the
bundled public-domain one by default (offline), or the user's Penn Treebank, which the
benchmark trained on (``source="ptb"``: ``<workspace>/data/ptb/``, see WORKSPACE.md).
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np

from zcjax import text, workspace
from zcjax.data import TokenBatch, check_token_batch
from zcjax.validation import cap, check_int, check_seed

#: The reference's batch: 256 streams (``Reproduce.ipynb``) of ``bptt`` = 70 tokens.
SCORING_BATCH_SIZE = 256
SOURCES = ("bundled", "ptb")


def corpus(source: str = "bundled", root: "str | os.PathLike | None" = None) -> text.Corpus:
    """The bundled text (``"bundled"``) or the user's Penn Treebank (``"ptb"``) from ``root``
    (default: the workspace's data folder, which holds ``ptb/``)."""
    if source == "bundled":
        return text.bundled_corpus()
    if source == "ptb":
        return text.load_ptb(workspace.data_dir() if root is None else root)
    raise ValueError(f"unknown text source {cap(repr(source))}; expected one of {SOURCES}")


def scoring_batch(config, *, size: int = SCORING_BATCH_SIZE, source: str = "bundled",
                  root: "str | os.PathLike | None" = None, split: str = "train",
                  start: int = 0) -> TokenBatch:
    """``size`` sequences of ``config.seq_len`` tokens of ``split``, as the reference batches.

    Raises:
      ValueError: a vocabulary larger than the network's (``config.num_classes``), or a split
        too short for ``size`` streams of ``seq_len + 1`` tokens.
    """
    words = corpus(source, root)
    if words.vocab_size > config.num_classes:
        raise ValueError(f"{words.source} has {words.vocab_size:,} words but the network "
                         f"predicts {config.num_classes:,} (num_classes)")
    batch = text.stream_batch(words.split(split), size, config.seq_len, start)
    return check_token_batch(batch, vocab_size=config.num_classes, seq_len=config.seq_len)


def random_batch(config, size: int = 8, seed: int = 0) -> TokenBatch:
    """Uniform random token streams (seeded, NumPy), for networks smaller than any text's
    vocabulary: ``size`` sequences and their next tokens."""
    size = check_int(size, "size", 1)
    rng = np.random.default_rng(check_seed(seed))
    ids = rng.integers(0, config.num_classes, (size, config.seq_len + 1))
    return TokenBatch(jnp.asarray(ids[:, :-1], jnp.int32), jnp.asarray(ids[:, 1:], jnp.int32))

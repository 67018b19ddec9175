"""PTB-style corpora (zcjax.text): the reference reader's ids, its batches, the bundled text."""

from __future__ import annotations

import numpy as np
import pytest

from zcjax import data, text


def _write(folder, names, contents):
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in zip(names, contents):
        (folder / name).write_text(body)


FILES = (" the cat sat \n a cat \n", " the dog \n", " a bird sat \n")


def test_ids_follow_first_appearance_over_train_valid_test(tmp_path):
    _write(tmp_path / "ptb", [f"ptb.{s}.txt" for s in text.SPLITS], FILES)
    corpus = text.load_ptb(tmp_path)
    # as the reference's Corpus: every line is split() + ['<eos>'], ids in order of appearance
    assert corpus.words == ("the", "cat", "sat", "<eos>", "a", "dog", "bird")
    np.testing.assert_array_equal(corpus.train, [0, 1, 2, 3, 4, 1, 3])
    np.testing.assert_array_equal(corpus.valid, [0, 5, 3])
    np.testing.assert_array_equal(corpus.test, [4, 6, 2, 3])
    assert corpus.decode(corpus.encode(["a", "dog"])) == ["a", "dog"]
    with pytest.raises(KeyError, match="unicorn"):
        corpus.encode(["unicorn"])


def test_plain_file_names_and_clear_errors(tmp_path):
    _write(tmp_path, [f"{s}.txt" for s in text.SPLITS], FILES)  # NAS-Bench-NLP's data/ptb
    assert text.load_ptb(tmp_path).vocab_size == 7
    with pytest.raises(FileNotFoundError, match="ptb.train.txt"):
        text.load_ptb(tmp_path / "nowhere")
    (tmp_path / "valid.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(ValueError, match="not UTF-8"):
        text.load_ptb(tmp_path)
    (tmp_path / "valid.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="holds no words"):
        text.load_ptb(tmp_path)


def test_stream_batch_is_batchify_then_get_batch():
    ids = np.arange(50)
    batch = text.stream_batch(ids, size=4, seq_len=3, start=2)
    # batchify(ids, 4): 4 streams of 12 (2 dropped); get_batch(i=2): positions 2..4, targets +1
    np.testing.assert_array_equal(batch.tokens, [[2, 3, 4], [14, 15, 16], [26, 27, 28],
                                                 [38, 39, 40]])
    np.testing.assert_array_equal(batch.labels, np.asarray(batch.tokens) + 1)
    assert batch.tokens.dtype == batch.labels.dtype == np.int32
    data.check_token_batch(batch, vocab_size=50, seq_len=3)
    with pytest.raises(ValueError, match="needs 13 per stream"):
        text.stream_batch(ids, size=4, seq_len=12)


def test_check_token_batch_names_the_problem():
    good = text.stream_batch(np.arange(40), 2, 5)
    with pytest.raises(ValueError, match="rank 2"):
        data.check_token_batch(data.TokenBatch(good.tokens[0], good.labels))
    with pytest.raises(ValueError, match="int32"):
        data.check_token_batch(data.TokenBatch(good.tokens.astype(np.float32), good.labels))
    with pytest.raises(ValueError, match="shape"):
        data.check_token_batch(data.TokenBatch(good.tokens, good.labels[:, :2]))
    with pytest.raises(ValueError, match="0..9"):
        data.check_token_batch(good, vocab_size=10)
    with pytest.raises(ValueError, match="7 tokens"):
        data.check_token_batch(good, seq_len=7)


def test_the_bundled_text():
    corpus = text.bundled_corpus()
    assert corpus.vocab_size == 10_000  # PTB's size: 9,998 words, <unk>, <eos>
    assert {"<unk>", "<eos>", "N"} <= set(corpus.words)
    assert len(corpus.train) > 256 * 71  # the reference's batch fits
    assert corpus.train.max() < 10_000 and not corpus.train.flags.writeable


def test_ptb_style_lines():
    lines = text.ptb_style_lines("It’s 1961: students hacked the Rose Bowl! Did they? Yes.")
    assert lines == ["it 's N students hacked the rose bowl", "did they", "yes"]
    assert text.limit_vocabulary(["a b a c", "a b"], 4) == ["a b a <unk>", "a b"]

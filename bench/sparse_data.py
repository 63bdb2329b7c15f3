"""Hashed text for the sparse benchmarks: generated documents through scikit-learn's
``HashingVectorizer``, the usual way to train a linear model on text without a vocabulary.

:func:`make_hashed_text` generates, exactly:

1. **Vocabulary.** ``VOCABULARY`` (50,000) tokens ``w0 .. w49999``.
2. **Documents.** Document i has ``uniform{100..200}`` words. Its class c (0 or 1, each with
   probability 1/2) and its topic share ``a_i ~ uniform(0, 2 * TOPIC_SHARE)`` decide each
   word: with probability ``a_i`` a topic word, drawn from class c's topic distribution,
   else a background word, drawn from the background distribution. Both are Zipf laws over
   the vocabulary (probability of rank r proportional to ``r ** -ZIPF``), each with its own
   random order of the tokens: the background's, class 0's topic, class 1's topic. A
   document with few topic words is hard to classify, so a linear model's best accuracy
   stays below 1.
3. **Features.** ``HashingVectorizer(n_features=2**20, alternate_sign=False, norm="l2",
   dtype=np.float32)``: term counts hashed into 2**20 columns, each row divided by its L2
   norm: a float32 CSR (canonical: sorted column indices, no duplicates).

Deterministic for a seed. scikit-learn is needed (the vectorizer); the hashing is its
single-threaded pass over the text, and takes most of the time.
"""

from __future__ import annotations

import numpy as np

VOCABULARY = 50_000
ZIPF = 1.05
TOPIC_SHARE = 0.04  # mean share of topic words in a document
WORDS = (100, 200)  # words per document, inclusive
HASHED_FEATURES = 2**20


def _zipf_probabilities(n: int, s: float) -> np.ndarray:
    p = np.arange(1, n + 1, dtype=np.float64) ** -s
    return p / p.sum()


def documents(n_docs: int, random_state: int = 0) -> tuple[list[str], np.ndarray]:
    """``n_docs`` generated documents (strings of space-separated tokens) and their classes."""
    rng = np.random.default_rng(random_state)
    vocab = [f"w{i}" for i in range(VOCABULARY)]
    p = _zipf_probabilities(VOCABULARY, ZIPF)
    orders = [rng.permutation(VOCABULARY) for _ in range(3)]  # background, topic 0, topic 1
    y = rng.integers(0, 2, n_docs)
    share = rng.uniform(0, 2 * TOPIC_SHARE, n_docs)
    lengths = rng.integers(WORDS[0], WORDS[1] + 1, n_docs)
    starts = np.zeros(n_docs + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    total = int(starts[-1])
    doc_of_word = np.repeat(np.arange(n_docs), lengths)
    ranks = rng.choice(VOCABULARY, size=total, p=p)  # the same law for every component
    topical = rng.random(total) < share[doc_of_word]
    component = np.where(topical, 1 + y[doc_of_word], 0)
    words = np.stack(orders)[component, ranks]
    del doc_of_word, ranks, topical, component
    texts = [" ".join(map(vocab.__getitem__, words[starts[i]:starts[i + 1]].tolist())) for i in range(n_docs)]
    return texts, y.astype(np.int64)


def make_hashed_text(n_docs: int = 200_000, random_state: int = 0):
    """``(X, y)``: X the documents of :func:`documents` hashed (a float32 CSR of shape
    (n_docs, 2**20)), y their classes (int64)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    texts, y = documents(n_docs, random_state)
    vectorizer = HashingVectorizer(n_features=HASHED_FEATURES, alternate_sign=False, norm="l2", dtype=np.float32)
    X = vectorizer.transform(texts)
    X.sort_indices()
    return X, y

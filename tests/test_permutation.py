"""_core.permutation_ and fastgd.shuffling.permutation (the order of a shuffled epoch): a
permutation at every size, the bits of a plain Python reference of its algorithm, fixed by
the seed, and uniform (chi-square tests with fixed seeds, so they never flake)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from fastgd import _core
from fastgd.shuffling import permutation

SIZES = [0, 1, 2, 3, 5, 7, 8, 9, 11, 13, 15, 16, 17, 31, 33, 1023, 65537]
MASK = 2**64 - 1


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


def reference(seed: int, n: int) -> np.ndarray:
    """The algorithm of cpp/src/kernels/permutation.cpp in plain Python: xoshiro256++ seeded by
    splitmix64, Lemire's bounded draws, inside-out Fisher-Yates."""
    sm = seed
    s = []
    for _ in range(4):
        sm = (sm + 0x9E3779B97F4A7C15) & MASK
        z = sm
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        s.append(z ^ (z >> 31))

    def next_u64() -> int:
        out = (_rotl((s[0] + s[3]) & MASK, 23) + s[0]) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return out

    def below(bound: int) -> int:
        m = next_u64() * bound
        if (m & MASK) < bound:
            threshold = (2**64 - bound) % bound
            while (m & MASK) < threshold:
                m = next_u64() * bound
        return m >> 64

    out = [0] * n
    for i in range(n):
        j = below(i + 1)
        out[i] = out[j]
        out[j] = i
    return np.array(out, np.int64)


@pytest.mark.parametrize("n", SIZES)
def test_is_a_permutation_with_the_references_bits(n):
    for seed in (0, 1, 2**63, MASK):
        out = np.full(n, -7, np.int64)
        _core.permutation_(seed, out)
        np.testing.assert_array_equal(np.sort(out), np.arange(n))
        if n <= 1023:
            np.testing.assert_array_equal(out, reference(seed, n))


def test_is_fixed_by_the_seed():
    a, b, c = (np.empty(1000, np.int64) for _ in range(3))
    _core.permutation_(42, a)
    _core.permutation_(42, b)
    _core.permutation_(43, c)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_positions_are_uniform():
    # Where each of n values lands, over many seeds: every (value, position) pair has
    # probability 1/n.
    n, draws = 7, 70_000
    seeds = np.random.default_rng(2024).integers(0, 2**64, draws, dtype=np.uint64)
    counts = np.zeros((n, n), np.int64)
    out = np.empty(n, np.int64)
    for s in seeds.tolist():
        _core.permutation_(s, out)
        counts[out, np.arange(n)] += 1
    assert stats.chisquare(counts.ravel()).pvalue > 1e-4


def test_every_permutation_is_equally_likely():
    # All 4! orders of 4 values, each with probability 1/24 (uniform positions alone would
    # not show a bias between orders).
    n, draws = 4, 48_000
    index = {p: k for k, p in enumerate(itertools.permutations(range(n)))}
    counts = np.zeros(math.factorial(n), np.int64)
    out = np.empty(n, np.int64)
    for s in np.random.default_rng(7).integers(0, 2**64, draws, dtype=np.uint64).tolist():
        _core.permutation_(s, out)
        counts[index[tuple(out.tolist())]] += 1
    assert stats.chisquare(counts).pvalue > 1e-4


def test_the_generator_fixes_every_permutation_with_one_draw_each():
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    buf = np.empty(50, np.int64)
    assert permutation(a, 50, buf) is buf
    np.testing.assert_array_equal(buf, permutation(b, 50))
    # One draw per permutation, whatever n: the generators stay in step.
    permutation(a, 1)
    permutation(b, 100_000)
    assert a.integers(2**62) == b.integers(2**62)


def test_rejects_a_buffer_it_would_have_to_convert():
    with pytest.raises(TypeError, match="int64"):
        _core.permutation_(0, np.empty(4, np.int32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.permutation_(0, np.empty(8, np.int64)[::2])
    ro = np.empty(4, np.int64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.permutation_(0, ro)
    with pytest.raises(ValueError, match="shape"):
        permutation(np.random.default_rng(0), 5, np.empty(4, np.int64))

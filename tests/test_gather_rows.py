"""_core.gather_rows_ (an MLP batch's input rows, gathered and standardized in one pass)
against NumPy: the same bits as ``X[rows]`` and as the standardization of a copy."""

from __future__ import annotations

import numpy as np
import pytest

from fastgd import _core
from fastgd.models._data import standardized

SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 1023]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", SIZES[1:])
def test_gathers_and_standardizes_with_numpys_bits(dtype, cols):
    rng = np.random.default_rng(cols)
    X = (rng.standard_normal((40, cols)) * 1e3 + 7).astype(dtype)
    mean = rng.standard_normal(cols) * 100
    scale = rng.random(cols) * 50 + 1e-3
    for n in (0, 1, 17, 40):
        rows = rng.integers(0, 40, n)
        out = np.full((n, cols), np.nan, dtype)
        _core.gather_rows_(X, out, rows)
        np.testing.assert_array_equal(out, X[rows])
        _core.gather_rows_(X, out, rows, mean=mean, scale=scale)
        np.testing.assert_array_equal(out, standardized(X[rows], mean, scale, dtype))
        first = 40 - n
        _core.gather_rows_(X, out, None, first, mean, scale)
        np.testing.assert_array_equal(out, standardized(X[first:], mean, scale, dtype))


def test_nan_and_infinity_pass_through():
    X = np.array([[np.nan, np.inf, -np.inf, 1.0]], np.float32)
    out = np.empty_like(X)
    _core.gather_rows_(X, out, None, 0, np.zeros(4), np.full(4, 2.0))
    np.testing.assert_array_equal(out, [[np.nan, np.inf, -np.inf, 0.5]])


def test_bad_arguments_raise():
    X = np.zeros((5, 3), np.float32)
    out = np.empty((2, 3), np.float32)
    with pytest.raises(IndexError):
        _core.gather_rows_(X, out, np.array([0, 5]))
    with pytest.raises(IndexError):
        _core.gather_rows_(X, out, np.array([-1, 0]))
    with pytest.raises(IndexError):
        _core.gather_rows_(X, out, None, 4)
    with pytest.raises(TypeError):
        _core.gather_rows_(X, out, np.array([0, 1], np.int32))
    with pytest.raises(TypeError):
        _core.gather_rows_(X, np.empty((2, 3)), np.array([0, 1]))  # no silent casts
    with pytest.raises(ValueError):
        _core.gather_rows_(X, np.empty((2, 4), np.float32), np.array([0, 1]))
    with pytest.raises(ValueError):
        _core.gather_rows_(X, out, np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        _core.gather_rows_(X, X[:2], np.array([3, 4]))  # out overlaps X
    with pytest.raises(ValueError):
        _core.gather_rows_(X, out, None, 0, np.zeros(3), None)
    with pytest.raises(TypeError):
        _core.gather_rows_(X, out, None, 0, np.zeros(3, np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError):
        _core.gather_rows_(X, out, None, 0, np.zeros(2), np.ones(2))
    with pytest.raises(ValueError):
        _core.gather_rows_(X, np.empty((3, 2), np.float32).T[:2], np.array([0, 1]))  # not C-contiguous

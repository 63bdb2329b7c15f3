"""The fused element-wise MLP kernels against NumPy, at the SIMD widths, every level."""

from __future__ import annotations

import numpy as np
import pytest

from fastgd import _core

SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 33, 1023]
C, K = float(np.sqrt(2.0 / np.pi)), 0.044715


def _tol(dtype):
    return dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", SIZES)
def test_bias_relu(simd_level, dtype, cols):
    rng = np.random.default_rng(cols)
    h = rng.standard_normal((3, cols)).astype(dtype)
    h[0, 0] = np.nan
    b = rng.standard_normal(cols).astype(dtype)
    a = np.empty_like(h)
    pre = h + b
    _core.bias_relu_(h, b, a)
    np.testing.assert_array_equal(h, pre)
    np.testing.assert_array_equal(a, np.maximum(pre, 0))  # exact: one add and one max


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, *SIZES, 65537])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_activation_grad(simd_level, dtype, n, activation):
    rng = np.random.default_rng(n)
    h = rng.standard_normal(n).astype(dtype)
    d = rng.standard_normal(n).astype(dtype)
    t = np.tanh(C * (h + K * h**3)).astype(dtype)
    a = {"relu": np.maximum(h, 0), "tanh": np.tanh(h), "sigmoid": 1 / (1 + np.exp(-h)), "gelu": 0.5 * h * (1 + t)}
    a = a[activation].astype(dtype)
    expected = {
        "relu": d * (h > 0),
        "tanh": d * (1 - a * a),
        "sigmoid": d * (a * (1 - a)),
        "gelu": d * (0.5 * (1 + t) + 0.5 * h * (1 - t * t) * C * (1 + 3 * K * h * h)),
    }[activation]
    _core.activation_grad_(activation, d, h=h, a=a, t=t, c=C, k=K)
    np.testing.assert_allclose(d, expected, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, *SIZES])
def test_gelu_parts(simd_level, dtype, n):
    h = np.random.default_rng(n).standard_normal(n).astype(dtype)
    u = np.empty_like(h)
    _core.gelu_inner_(h, u, C, K)
    np.testing.assert_allclose(u, C * (h + K * h**3), **_tol(dtype))
    t = np.tanh(u)
    a = np.empty_like(h)
    _core.gelu_outer_(h, t, a)
    np.testing.assert_allclose(a, 0.5 * h * (1 + t), **_tol(dtype))


def test_relu_grad_keeps_nan_like_numpy():
    d = np.array([np.nan, 1.0, np.nan, 2.0])
    h = np.array([-1.0, -1.0, 1.0, np.nan])
    expected = d * (h > 0)
    _core.activation_grad_("relu", d, h=h)
    np.testing.assert_array_equal(d, expected)


def test_bad_input_names_the_argument_and_writes_nothing():
    h = np.zeros((2, 3), np.float32)
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"^b: dtype float64"):
        _core.bias_relu_(h, np.zeros(3), a)
    with pytest.raises(ValueError, match=r"^a: shape \(3, 2\) does not match h shape \(2, 3\)"):
        _core.bias_relu_(h, np.zeros(3, np.float32), np.zeros((3, 2), np.float32))
    ro = np.ones(5)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"^d: array is read-only"):
        _core.activation_grad_("relu", ro, h=np.ones(5))
    d = np.ones(5)
    with pytest.raises(ValueError, match="h is required"):
        _core.activation_grad_("relu", d)
    with pytest.raises(ValueError, match="activation must be"):
        _core.activation_grad_("swish", d, h=d)
    with pytest.raises(ValueError, match=r"^h: array is not C-contiguous"):
        _core.activation_grad_("relu", d, h=np.ones(10)[::2])
    np.testing.assert_array_equal(d, 1.0)

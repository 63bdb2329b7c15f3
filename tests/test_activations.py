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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", SIZES)
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_activation_grad_with_bias_grad(simd_level, dtype, cols, activation):
    """With gb, the same d as without, and gb = the column sums of the new d."""
    rng = np.random.default_rng(cols)
    rows = 37
    h = rng.standard_normal((rows, cols)).astype(dtype)
    d = rng.standard_normal((rows, cols)).astype(dtype)
    t = np.tanh(C * (h + K * h**3)).astype(dtype)
    a = np.tanh(h).astype(dtype)
    expected = d.copy()
    _core.activation_grad_(activation, expected, h=h, a=a, t=t, c=C, k=K)
    gb = np.full(cols, np.nan, dtype)
    _core.activation_grad_(activation, d, h=h, a=a, t=t, c=C, k=K, gb=gb)
    np.testing.assert_array_equal(d, expected)
    np.testing.assert_allclose(gb, expected.astype(np.float64).sum(axis=0), **_tol(dtype))


def test_activation_grad_bias_grad_of_no_rows_is_zero():
    gb = np.full(4, np.nan)
    _core.activation_grad_("relu", np.zeros((0, 4)), h=np.zeros((0, 4)), gb=gb)
    np.testing.assert_array_equal(gb, 0.0)


def _softmax_xent_reference(z, y, w, scale):
    z64 = z.astype(np.float64)
    m = z64.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z64 - m).sum(axis=1))
    rows = np.arange(len(y))
    wr = np.ones(len(y)) if w is None else w.astype(np.float64)
    p = np.exp(z64 - lse[:, None])
    p[rows, y] -= 1.0
    d = p * (scale * wr)[:, None]
    return float(wr @ (lse - z64[rows, y])), d


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 2, 7, 8, 9, 10, 17])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_cross_entropy_grad(simd_level, dtype, k, weighted):
    rng = np.random.default_rng(k)
    n = 33
    z = (3 * rng.standard_normal((n, k))).astype(dtype)
    z[0] += 500  # large logits: the row maximum is subtracted first
    y = rng.integers(0, k, n).astype(np.int64)
    w = rng.uniform(0, 2, n).astype(dtype) if weighted else None
    d = np.full_like(z, np.nan)
    gb = np.full(k, np.nan, dtype)
    z_before = z.copy()
    loss = _core.softmax_cross_entropy_grad_(z, y, d, w=w, gb=gb, scale=1 / n)
    ref_loss, ref_d = _softmax_xent_reference(z, y, w, 1 / n)
    tol = _tol(dtype)
    np.testing.assert_array_equal(z, z_before)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(d, ref_d, **tol)
    np.testing.assert_allclose(gb, ref_d.sum(axis=0), **tol)
    # Without gb, and in place (d is z): the same gradient.
    loss2 = _core.softmax_cross_entropy_grad_(z, y, z, w=w, scale=1 / n)
    assert loss2 == loss
    np.testing.assert_array_equal(z, d)


def test_softmax_cross_entropy_grad_matches_losses_module():
    from fastgd import losses

    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 4))
    y = rng.integers(0, 4, 50).astype(np.int64)
    w = rng.uniform(0.5, 1.5, 50)
    value, dz = losses.softmax_cross_entropy(z, y, w)
    d = np.empty_like(z)
    total = _core.softmax_cross_entropy_grad_(z, y, d, w=w, scale=1 / w.sum())
    np.testing.assert_allclose(total / w.sum(), value, rtol=1e-12)
    np.testing.assert_allclose(d, dz, rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_grad_nan_logits_give_nan_loss():
    z = np.array([[0.0, np.nan], [1.0, 2.0]], np.float32)
    d = np.empty_like(z)
    assert np.isnan(_core.softmax_cross_entropy_grad_(z, np.array([0, 1]), d))


def test_softmax_cross_entropy_grad_bad_input_writes_nothing():
    z = np.zeros((3, 4), np.float32)
    y = np.array([0, 1, 3], np.int64)
    d = np.full_like(z, 7.0)
    gb = np.full(4, 7.0, np.float32)
    cases = [
        (dict(y=np.array([0, 4, 1])), ValueError, r"^y: label 4 at 1 is not in \[0, 4\)"),
        (dict(y=np.array([0, -1, 1])), ValueError, r"^y: label -1"),
        (dict(y=np.array([0, 1, 2], np.int32)), TypeError, r"^y: dtype int32"),
        (dict(y=np.array([0.0, 1.0, 2.0])), TypeError, r"^y: dtype float64"),
        (dict(y=np.array([0, 1])), ValueError, r"^y must be 1-D with z.shape\[0\] = 3"),
        (dict(y=[0, 1, 2]), TypeError, r"^y must be a NumPy array"),
        (dict(d=np.zeros((3, 4))), TypeError, r"^d:"),
        (dict(d=np.zeros((4, 3), np.float32)), ValueError, r"^d: shape"),
        (dict(w=np.ones(3)), TypeError, r"^w: dtype float64 does not match float32"),
        (dict(w=np.ones(2, np.float32)), ValueError, r"^w: must be 1-D with 3 elements"),
        (dict(gb=np.ones(3, np.float32)), ValueError, r"^gb: must be 1-D with 4 elements"),
        (dict(z=np.zeros(4, np.float32)), ValueError, r"^z must be 2-D"),
    ]
    for change, exc, msg in cases:
        kw = dict(z=z, y=y, d=d, gb=gb) | change
        with pytest.raises(exc, match=msg):
            _core.softmax_cross_entropy_grad_(kw.pop("z"), kw.pop("y"), kw.pop("d"), **kw)
    ro = d.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"^d: array is read-only"):
        _core.softmax_cross_entropy_grad_(z, y, ro)
    np.testing.assert_array_equal(d, 7.0)
    np.testing.assert_array_equal(gb, 7.0)


def test_activation_grad_bias_grad_bad_input():
    d = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"^gb: must be 1-D with 3 elements"):
        _core.activation_grad_("relu", d, h=d, gb=np.zeros(2))
    with pytest.raises(TypeError, match=r"^gb: dtype float32"):
        _core.activation_grad_("relu", d, h=d, gb=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"^d must be 2-D"):
        _core.activation_grad_("relu", np.ones(3), h=np.ones(3), gb=np.zeros(3))
    np.testing.assert_array_equal(d, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", SIZES)
def test_bias_add(simd_level, dtype, cols):
    rng = np.random.default_rng(cols)
    h = rng.standard_normal((3, cols)).astype(dtype)
    b = rng.standard_normal(cols).astype(dtype)
    expected = h + b
    _core.bias_add_(h, b)
    np.testing.assert_array_equal(h, expected)  # exact: one add


def test_bias_add_in_place_without_a_temporary():
    import tracemalloc

    h = np.zeros((512, 64), np.float32)
    b = np.ones(64, np.float32)
    _core.bias_add_(h, b)
    tracemalloc.start()
    try:
        _core.bias_add_(h, b)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < h.nbytes // 8
    np.testing.assert_array_equal(h, 2.0)


def test_bias_add_bad_input():
    h = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"^b: dtype float64 does not match float32"):
        _core.bias_add_(h, np.zeros(3))
    with pytest.raises(ValueError, match=r"^b: must be 1-D with 3 elements"):
        _core.bias_add_(h, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"^h must be 2-D"):
        _core.bias_add_(np.zeros(3, np.float32), np.zeros(3, np.float32))
    np.testing.assert_array_equal(h, 0.0)

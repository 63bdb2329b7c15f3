r"""The network behind :class:`~fastgd.models.MLPClassifier` and
:class:`~fastgd.models.MLPRegressor`: forward and backward passes of a fully connected
network whose parameters all live in one flat buffer.

Layout of the flat buffer ``theta`` (float32 or float64), for layers ``l = 0 .. L-1`` of
``sizes[l] -> sizes[l+1]`` units::

    [W_0.ravel(), ..., W_{L-1}.ravel(),   b_0, ..., b_{L-1},   gamma_l for batch-normed l]

``W_l`` has shape ``(sizes[l], sizes[l+1])`` (scikit-learn's ``coefs_`` orientation). The
weights come first so that the L2 penalty is one operation on ``theta[:n_weights]``. A
batch-normalized hidden layer has no bias: its ``b_l`` slot holds the shift ``beta_l`` of
the normalization (which takes the bias's role), and its scale ``gamma_l`` comes after all
the shifts. The gradient has the same layout, in one buffer allocated once and reused,
written in place by the backward pass, so the optimizer makes one fused kernel call per
step.

A hidden layer computes :math:`a = f(h)` with :math:`h = a_{\text{in}} W + b`, or with batch
normalization :math:`h = \gamma \odot (u - \mu_B) / \sqrt{\sigma^2_B + \epsilon} + \beta`,
:math:`u = a_{\text{in}} W`, the (unweighted) mean and variance taken over the batch in
training and running averages at inference. Inverted dropout then keeps each unit with
probability :math:`1 - p` and scales the kept ones by :math:`1 / (1 - p)`, in training
only. The output layer is linear.

**Raw rows.** A pass may read raw rows of ``X`` with a :class:`RowScaling`: each batch's rows
(or each block of rows at inference) are gathered and standardized into an array of the
batch's size, reused from batch to batch, before the first product, with the same bits as a
standardized copy of the whole of ``X`` (:func:`fastgd.models._data.centre_and_scale`),
which is never made.
"""

from __future__ import annotations

import contextvars
import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fastgd import _core, persistence
from fastgd.models._data import _HUGE, centre_and_scale
from fastgd.models._gemm import numpy_sgemm

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["ACTIVATIONS", "Network", "RowScaling"]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


# Rows per block when a pass reads many rows at once (inference): a block's arrays stay in
# the order of this many bytes (the standardized rows and every layer's outputs).
BLOCK_BYTES = 4 << 20


@dataclass
class RowScaling:
    """The standardization ``(x - mean) / scale`` (per feature, in float64, then in the
    network's dtype) that a pass applies to the raw rows it reads."""

    mean: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        self.mean = np.ascontiguousarray(self.mean, np.float64)
        self.scale = np.ascontiguousarray(self.scale, np.float64)
        # No column that centre_and_scale computes apart (its huge means or scales): the
        # plain formula, which _core.gather_rows_ computes with the same bits, holds for all.
        self.plain = not bool(np.any(np.maximum(np.abs(self.mean), self.scale) > _HUGE))

    def apply(self, rows: np.ndarray, t64: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``rows`` standardized into ``out`` through the float64 scratch ``t64`` (which may
        be ``out``; neither may be ``rows``)."""
        return centre_and_scale(rows, self.mean, self.scale, t64, out)


def _sub_rows(rows: slice | np.ndarray, lo: int, hi: int) -> slice | np.ndarray:
    """Rows lo:hi of a batch given as row numbers (an index array, or a slice of step 1)."""
    if isinstance(rows, slice):
        start = rows.start or 0
        return slice(start + lo, start + hi)
    return rows[lo:hi]


@dataclass
class _Workspace:
    """Arrays for one batch size, allocated once and reused by every batch of that size."""

    h: list[np.ndarray]                       # pre-activations (the output layer's: the logits)
    a: list[np.ndarray]                       # activations of the hidden layers
    d: list[np.ndarray]                       # gradients w.r.t. each layer's h
    extra: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)  # masks, x-hat, tanh(...)
    dropped: bool = False                     # the last forward pass used dropout masks
    parts: list[_Workspace] = field(default_factory=list)  # row blocks of these arrays (train_batch)
    x: np.ndarray | None = None               # the input rows, gathered and standardized
    xg: np.ndarray | None = None              # the input rows gathered, to be standardized
    x64: np.ndarray | None = None             # float64 scratch of the standardization
    scratch: np.ndarray | None = None         # every array of the compiled step (Network.train_batch)

    def rows(self, lo: int, hi: int) -> _Workspace:
        """A workspace of rows lo:hi of these arrays (views: contiguous row blocks)."""
        if not self.d:
            self.d = [np.empty_like(h) for h in self.h]
        return _Workspace(h=[h[lo:hi] for h in self.h], a=[a[lo:hi] for a in self.a], d=[d[lo:hi] for d in self.d])


# A training batch of at least 2 x this many rows goes through forward and backward as two
# row halves, each with its own gradient buffer, summed afterwards (see Network.train_batch).
MIN_PART_ROWS = 64


@persistence.register("network")  # stored in model files by its structure (fastgd.persistence)
class Network:
    """A fully connected network over a flat parameter buffer (see the module docstring).

    ``forward``/``backward`` keep their intermediate arrays in per-batch-size workspaces;
    ``grad`` is the one gradient buffer. Running batch-norm statistics live here too (they
    are not trained by the optimizer)."""

    def __init__(self, sizes: list[int], activation: str, dropout: float, batch_norm: bool, dtype) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.sizes = list(sizes)
        self.L = len(sizes) - 1
        self.activation = activation
        self.dropout = float(dropout)
        self.bn = [bool(batch_norm) and i < self.L - 1 for i in range(self.L)]
        self.dtype = np.dtype(dtype)
        w_sizes = [sizes[i] * sizes[i + 1] for i in range(self.L)]
        self.n_weights = sum(w_sizes)
        self.w_offsets = np.concatenate([[0], np.cumsum(w_sizes)]).astype(int)
        b_start = self.n_weights
        self.b_offsets = b_start + np.concatenate([[0], np.cumsum(sizes[1:])]).astype(int)
        g_start = int(self.b_offsets[-1])
        self.g_offsets: dict[int, int] = {}
        for i in range(self.L):
            if self.bn[i]:
                self.g_offsets[i] = g_start
                g_start += sizes[i + 1]
        self.size = g_start
        self.grad = np.zeros(self.size, dtype=self.dtype)
        self.running_mean = {i: np.zeros(sizes[i + 1], dtype=self.dtype) for i in range(self.L) if self.bn[i]}
        self.running_var = {i: np.ones(sizes[i + 1], dtype=self.dtype) for i in range(self.L) if self.bn[i]}
        self._workspaces: dict[int, _Workspace] = {}
        self._part_grads: list[tuple[np.ndarray, tuple]] = []  # the second half's gradient buffer
        self._executor: ThreadPoolExecutor | None = None  # a worker thread for the second half, during one fit
        self._views_of: np.ndarray | None = None
        self._views: tuple[list, list, dict] | None = None
        self._grad_views = self.views(self.grad, cache=False)

    # -- parameters ------------------------------------------------------------------

    def views(self, theta: np.ndarray, cache: bool = True) -> tuple[list, list, dict]:
        """(weights, biases (beta for batch-normed layers), {layer: gamma}): views of theta."""
        if cache and self._views_of is theta:
            views = self._views
            assert views is not None  # set before _views_of
            return views
        s = self.sizes
        W = [theta[self.w_offsets[i]:self.w_offsets[i + 1]].reshape(s[i], s[i + 1]) for i in range(self.L)]
        b = [theta[self.b_offsets[i]:self.b_offsets[i + 1]] for i in range(self.L)]
        g = {i: theta[o:o + s[i + 1]] for i, o in self.g_offsets.items()}
        if cache:
            # The views first: another thread (train_batch's halves) that finds theta
            # cached must find its views too.
            self._views = (W, b, g)
            self._views_of = theta
        return W, b, g

    def init(self, theta: np.ndarray, scheme: str, rng: np.random.Generator) -> None:
        """Weights uniform in +-sqrt(c / fan), zero biases and shifts, unit scales:
        "he" c = 6, fan = fan_in; "lecun" c = 3, fan = fan_in; "xavier" c = 6,
        fan = fan_in + fan_out (Glorot), i.e. variances 2/fan_in, 1/fan_in, 2/(fan_in + fan_out)."""
        W, b, g = self.views(theta, cache=False)
        for i, Wl in enumerate(W):
            fan_in, fan_out = Wl.shape
            c, fan = {"he": (6.0, fan_in), "lecun": (3.0, fan_in), "xavier": (6.0, fan_in + fan_out)}[scheme]
            bound = math.sqrt(c / fan)
            Wl[...] = rng.uniform(-bound, bound, size=Wl.shape)
            b[i][...] = 0
        for gl in g.values():
            gl[...] = 1

    def drop_workspaces(self) -> None:
        """Free the per-batch arrays (kept between batches of one fit only)."""
        self._workspaces.clear()
        self._part_grads = []
        self._views_of = self._views = None
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_workspaces"] = {}
        state["_part_grads"] = []
        state["_executor"] = None
        state["_views_of"] = state["_views"] = state["_grad_views"] = None
        return state

    def __setstate__(self, state):
        # Copies (pickle, deepcopy) rebuild the gradient views on their own buffer.
        self.__dict__.update(state)
        self._grad_views = self.views(self.grad, cache=False)

    # -- passes ----------------------------------------------------------------------

    def _workspace(self, n: int, cache: bool) -> _Workspace:
        ws = self._workspaces.get(n) if cache else None
        if ws is None:
            s, dt = self.sizes, self.dtype
            ws = _Workspace(h=[np.empty((n, s[i + 1]), dt) for i in range(self.L)],
                            a=[np.empty((n, s[i + 1]), dt) for i in range(self.L - 1)], d=[])
            if cache:
                # A training run sees two batch sizes (the full ones and the last); a third
                # size means a new run with other sizes, so the old arrays can go.
                if len(self._workspaces) >= 2:
                    self._workspaces.clear()
                self._workspaces[n] = ws
        return ws

    def row_parts(self, n: int) -> list[tuple[int, int]]:
        """How ``train_batch`` cuts a batch of n rows: two halves when n >= 2 *
        MIN_PART_ROWS and no layer needs whole-batch statistics or random masks (batch norm,
        dropout), else one block. A function of n and the network only, never of the
        thread count, so that 1 or 2 threads give the same bits."""
        if n < 2 * MIN_PART_ROWS or any(self.bn) or self.dropout > 0:
            return [(0, n)]
        return [(0, n // 2), (n // 2, n)]

    def train_batch(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                    loss_grad, *, rng: np.random.Generator | None, threads: int = 1,
                    rows: slice | np.ndarray | None = None,
                    scaling: RowScaling | None = None, softmax_output: bool = False) -> tuple[float, np.ndarray]:
        """Forward, loss and backward of one training batch; returns (the loss summed over
        the batch, weighted by ``w``; the gradient in ``grad``).

        The batch's inputs are ``X`` or, with ``rows`` (row numbers: an index array or a
        slice), ``X[rows]``; ``y`` and ``w`` are the batch's own. ``scaling``: ``X`` holds raw
        rows, standardized as they are read (each block of the batch gathers and standardizes
        its own rows into an array of the workspace).

        ``loss_grad(z, y, w, d, gb, n) -> (loss sum, bias_done)`` writes into ``d`` the
        gradient w.r.t. the logits ``z`` of ``sum_i w_i loss_i / n`` (and into ``gb`` the
        output bias's gradient if it says ``bias_done``).

        The batch runs as the row blocks of ``row_parts``: the first into ``grad``, the
        second into a gradient buffer of its own, added to ``grad`` at the end (always in
        that order). With ``threads >= 2`` the second block runs on a worker thread at the
        same time; the BLAS products and fastgd's kernels release the GIL, so the two blocks
        use two cores without BLAS's own threads (which spin while they wait, and lose much
        time when the cores are shared with other processes).

        ``softmax_output``: ``loss_grad`` is the softmax cross-entropy of the int64 labels ``y``
        (``_core.softmax_cross_entropy_grad_`` with ``scale=1/n``, writing the output bias's
        gradient). Then a float32 ReLU network without batch norm or dropout takes the whole
        step in one compiled call (``_core.mlp_train_step_``): the same products (NumPy's own
        SGEMM, :mod:`fastgd.models._gemm`) and kernels on the same blocks in the same order, so
        the same bits, without returning to Python between them and with the two blocks on
        OpenMP's threads."""
        n = X.shape[0] if rows is None else len(y)
        if softmax_output:
            done = self._compiled_step(theta, X, y, w, rows, scaling, threads, n)
            if done is not None:
                return done
        ws = self._workspace(n, cache=True)
        parts = self.row_parts(n)
        if len(parts) == 1:
            value = self._train_part(theta, X, rows, y, w, loss_grad, rng, ws, self.grad, self._grad_views, n,
                                     scaling)
            return value, self.grad
        if not ws.parts:
            ws.parts = [ws.rows(lo, hi) for lo, hi in parts]
        g2, g2_views = self._second_grad()

        def part(k: int, grad: np.ndarray, grad_views: tuple) -> float:
            lo, hi = parts[k]
            Xk, rk = (X[lo:hi], None) if rows is None else (X, _sub_rows(rows, lo, hi))
            return self._train_part(theta, Xk, rk, y[lo:hi], None if w is None else w[lo:hi], loss_grad, rng,
                                    ws.parts[k], grad, grad_views, n, scaling)

        def second():
            return part(1, g2, g2_views)

        if threads >= 2:
            self.views(theta)  # cached before the two threads read the cache
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="fastgd-mlp")
            # The second half goes to whichever thread claims it first: the worker if it gets
            # a core while this thread does the first half, else this thread right after (on
            # busy cores the worker may wait a whole time slice to run; then nobody waits for
            # it). Either way the same arithmetic on the same buffers.
            claim = threading.Lock()

            def second_if_unclaimed():
                return second() if claim.acquire(blocking=False) else None

            # In this thread's context (NumPy's errstate lives in a context variable).
            future = self._executor.submit(contextvars.copy_context().run, second_if_unclaimed)
            first = part(0, self.grad, self._grad_views)
            other = second() if claim.acquire(blocking=False) else future.result()
        else:
            first = part(0, self.grad, self._grad_views)
            other = second()
        self.grad += g2
        return first + other, self.grad

    def _second_grad(self) -> tuple[np.ndarray, tuple]:
        """The gradient buffer of a batch's second block of rows, and its views."""
        if not self._part_grads:
            g2 = np.zeros(self.size, dtype=self.dtype)
            self._part_grads = [(g2, self.views(g2, cache=False))]
        return self._part_grads[0]

    def _compiled_step(self, theta, X, y, w, rows, scaling, threads, n) -> tuple[float, np.ndarray] | None:
        """``train_batch`` of a softmax output in one call of ``_core.mlp_train_step_``, or None
        where that does not apply (another activation, batch norm, dropout, float64, a layer or
        batch of one, X not float32 in C order, columns standardized apart, no usable SGEMM):
        the NumPy passes."""
        if self.activation != "relu" or any(self.bn) or self.dropout > 0 or self.dtype != np.float32:
            return None
        # NumPy's matmul takes a product with a dimension of 1 to a matrix-vector routine: the
        # compiled step's products are all matrix-matrix ones.
        if n < 2 or min(self.sizes) < 2:
            return None
        if X.dtype != np.float32 or X.ndim != 2 or not X.flags.c_contiguous or y.dtype != np.int64 \
                or (w is not None and w.dtype != np.float32) or (scaling is not None and not scaling.plain):
            return None
        if isinstance(rows, slice) and rows.step not in (None, 1):
            return None
        gemm = numpy_sgemm()
        if gemm is None:
            return None
        index, first = (rows, 0) if isinstance(rows, np.ndarray) else (None, 0 if rows is None else rows.start or 0)
        if index is not None and (index.dtype != np.int64 or not index.flags.c_contiguous):
            index = np.ascontiguousarray(index, np.int64)
        ws = self._workspaces.get(n)
        if ws is None:
            ws = self._workspace(n, cache=True)
        if ws.scratch is None:
            ws.scratch = np.empty(n * _core.mlp_scratch_per_row(self.sizes), np.float32)
        g2 = self._second_grad()[0]
        parts = self.row_parts(n)
        value = _core.mlp_train_step_(gemm.address, gemm.ilp64, self.sizes, theta, self.grad, g2, X, index, first,
                                      None if scaling is None else scaling.mean,
                                      None if scaling is None else scaling.scale, np.ascontiguousarray(y),
                                      None if w is None else np.ascontiguousarray(w), ws.scratch, parts[0][1],
                                      threads)
        return value, self.grad

    def _train_part(self, theta, X, rows, y, w, loss_grad, rng, ws, grad, grad_views, n, scaling) -> float:
        x = self._input_rows(X, rows, scaling, ws)
        z = self.forward(theta, x, training=True, rng=rng, update_stats=True, ws=ws)
        if not ws.d:
            ws.d = [np.empty_like(h) for h in ws.h]
        value, bias_done = loss_grad(z, y, w, ws.d[-1], grad_views[1][-1], n)
        self.backward(theta, x, ws.d[-1], ws, output_bias_grad=bias_done, grad_views=grad_views)
        return value

    def _input_rows(self, X: np.ndarray, rows: slice | np.ndarray | None, scaling: RowScaling | None,
                    ws: _Workspace) -> np.ndarray:
        """The input of a pass over the workspace's rows: ``X`` or its ``rows``, standardized
        by ``scaling``. A view of ``X`` where that is enough (no scaling, rows in a range),
        else the rows gathered and standardized into ``ws.x``, reused from batch to batch."""
        if scaling is None and (rows is None or isinstance(rows, slice)):
            return X if rows is None else X[rows]
        shape = (ws.h[0].shape[0], X.shape[1])
        if ws.x is None:
            ws.x = np.empty(shape, self.dtype)
        if (scaling is None or scaling.plain) and X.dtype == self.dtype and X.flags.c_contiguous \
                and (not isinstance(rows, slice) or rows.step in (None, 1)):
            # One pass: gathered and standardized by the kernel (each half of a batch on its own thread).
            first, index = (0, None) if rows is None else (rows.start or 0, None) if isinstance(rows, slice) \
                else (0, np.ascontiguousarray(rows, np.int64))
            _core.gather_rows_(X, ws.x, index, first, None if scaling is None else scaling.mean,
                               None if scaling is None else scaling.scale)
            return ws.x
        if rows is None or isinstance(rows, slice):
            src = X if rows is None else X[rows]
        else:
            # Standardizing, into an array of their own: centre_and_scale reads its input
            # again for huge columns (so it must be neither the output nor the scratch).
            if scaling is not None and ws.xg is None:
                ws.xg = np.empty(shape, self.dtype)
            # mode="clip" (the rows are in range): "raise" would gather into a temporary first.
            src = np.take(X, rows, axis=0, out=ws.x if scaling is None else ws.xg, mode="clip")
        if scaling is None:
            return src
        if ws.x64 is None:
            ws.x64 = ws.x if self.dtype == np.float64 else np.empty(shape, np.float64)
        return scaling.apply(src, ws.x64, ws.x)

    def _buf(self, ws: _Workspace, name: str, i: int, dtype=None) -> np.ndarray:
        key = (name, i)
        if key not in ws.extra:
            ws.extra[key] = np.empty_like(ws.h[i], dtype=dtype)
        return ws.extra[key]

    def forward(self, theta: np.ndarray, X: np.ndarray, *, training: bool = False,
                rng: np.random.Generator | None = None, update_stats: bool = False,
                ws: _Workspace | None = None, upto: int | None = None) -> np.ndarray:
        """The logits, shape (n, sizes[-1]) (a view into the workspace: copy to keep).
        ``training``: batch statistics for batch norm and, with ``rng``, dropout.
        ``upto``: stop at layer ``upto``'s product ``a_in @ W`` (before its bias or
        normalization) and return it."""
        if ws is None:
            ws = self._workspace(X.shape[0], cache=False)
        W, b, g = self.views(theta)
        a_in = X
        drop = training and self.dropout > 0 and rng is not None
        for i in range(self.L):
            h = ws.h[i]
            np.matmul(a_in, W[i], out=h)
            if i == upto:
                return h
            if i == self.L - 1:
                _core.bias_add_(h, b[i])
                break
            a = ws.a[i]
            if self.bn[i]:
                self._bn_forward(h, i, b[i], g[i], ws, training, update_stats)
            elif self.activation == "relu":
                _core.bias_relu_(h, b[i], a)  # bias and activation in one pass
            else:
                _core.bias_add_(h, b[i])
            if self.bn[i] or self.activation != "relu":
                self._activate(h, a, i, ws)
            if drop:
                assert rng is not None  # (drop)
                keep = 1.0 - self.dropout
                mask = self._buf(ws, "mask", i)
                rng.random(dtype=mask.dtype, out=mask)
                keep_bool = self._buf(ws, "keep", i, dtype=bool)
                np.less(mask, keep, out=keep_bool)
                np.multiply(keep_bool, 1.0 / keep, out=mask)
                dropped = self._buf(ws, "dropped", i)
                np.multiply(a, mask, out=dropped)
                a_in = dropped
            else:
                a_in = a
        ws.dropped = drop
        return ws.h[-1]

    def _bn_forward(self, h, i, beta, gamma, ws, training, update_stats) -> None:
        if training:
            mu = h.mean(axis=0)
            h -= mu
            var = np.mean(h * h, axis=0)
            inv = 1.0 / np.sqrt(var + BN_EPS)
            if update_stats:
                n = h.shape[0]
                m = BN_MOMENTUM
                self.running_mean[i] *= 1 - m
                self.running_mean[i] += m * mu
                self.running_var[i] *= 1 - m
                self.running_var[i] += m * (var * (n / (n - 1)) if n > 1 else var)
            h *= inv
            xhat = self._buf(ws, "xhat", i)
            np.copyto(xhat, h)
            ws.extra[("inv", i)] = inv.astype(h.dtype, copy=False)
        else:
            h -= self.running_mean[i]
            h *= (1.0 / np.sqrt(self.running_var[i] + BN_EPS)).astype(h.dtype, copy=False)
        h *= gamma
        h += beta

    def _activate(self, h, a, i, ws) -> None:
        f = self.activation
        if f == "relu":
            np.maximum(h, 0, out=a)
        elif f == "tanh":
            np.tanh(h, out=a)
        elif f == "sigmoid":
            # 1 / (1 + exp(-h)) = (1 + tanh(h / 2)) / 2, which never overflows.
            np.multiply(h, 0.5, out=a)
            np.tanh(a, out=a)
            a += 1
            a *= 0.5
        else:  # gelu, tanh approximation: h/2 (1 + tanh(c (h + k h^3))); NumPy's SIMD tanh
            t = np.empty_like(h) if ws is None else self._buf(ws, "tanh", i)
            _core.gelu_inner_(h, t, _GELU_C, _GELU_K)
            np.tanh(t, out=t)
            _core.gelu_outer_(h, t, a)

    def _activation_backward(self, d, h, a, i, ws, gb=None) -> None:
        """d *= f'(h), in place; with ``gb``, also gb <- d.sum(axis=0) (the bias gradient)."""
        # One fused pass (relu from h, tanh and sigmoid from a, gelu from h and its tanh).
        t = ws.extra[("tanh", i)] if self.activation == "gelu" else None
        _core.activation_grad_(self.activation, d, h=h, a=a, t=t, c=_GELU_C, k=_GELU_K, gb=gb)

    def backward(self, theta: np.ndarray, X: np.ndarray, dlogits: np.ndarray, ws: _Workspace, *,
                 output_bias_grad: bool = False, grad_views: tuple | None = None) -> np.ndarray:
        """The gradient of the loss w.r.t. theta (in the one ``grad`` buffer), given its
        gradient ``dlogits`` w.r.t. the logits of the last ``forward`` of ``ws`` (in
        training mode). ``dlogits`` is consumed (``ws.d[-1]`` is a good place for it).
        ``output_bias_grad``: the output bias's gradient (the column sums of ``dlogits``) is
        already in ``grad``, as the fused loss kernel writes it. ``grad_views``: the views of
        another gradient buffer to write into instead (see ``train_batch``).

        Per layer, from the output down: the weight gradient ``a_in.T @ d`` and the input's
        ``d @ W.T`` are BLAS products into arrays of the workspace (transposed views, no
        copies); the activation's derivative and the next bias gradient (column sums) are one
        fused pass (``_core.activation_grad_`` with ``gb``)."""
        W, _, g = self.views(theta)
        gW, gb, gg = self._grad_views if grad_views is None else grad_views
        if not ws.d:
            ws.d = [np.empty_like(h) for h in ws.h]
        dropped = ws.dropped
        d = dlogits
        bias_done = output_bias_grad
        for i in range(self.L - 1, -1, -1):
            if i == 0:
                a_in = X
            elif dropped:
                a_in = ws.extra[("dropped", i - 1)]
            else:
                a_in = ws.a[i - 1]
            if self.bn[i]:
                self._bn_backward(d, i, g[i], gb[i], gg[i], ws)
            elif not bias_done:
                np.sum(d, axis=0, out=gb[i])
            np.matmul(a_in.T, d, out=gW[i])
            if i == 0:
                break
            d_in = ws.d[i - 1]
            np.matmul(d, W[i].T, out=d_in)
            if dropped:
                d_in *= ws.extra[("mask", i - 1)]
            # Layer i-1's bias gradient in the same pass, unless batch norm takes it.
            bias_done = not self.bn[i - 1]
            self._activation_backward(d_in, ws.h[i - 1], ws.a[i - 1], i - 1, ws, gb[i - 1] if bias_done else None)
            d = d_in
        return self.grad

    def _bn_backward(self, d, i, gamma, gbeta, ggamma, ws) -> None:
        """Gradients of beta and gamma, and d turned in place into the gradient w.r.t. u."""
        xhat = ws.extra[("xhat", i)]
        inv = ws.extra[("inv", i)]
        n = d.shape[0]
        np.sum(d, axis=0, out=gbeta)
        np.sum(d * xhat, axis=0, out=ggamma)
        # du = gamma * inv * (d - mean(d) - xhat * mean(d * xhat))
        d -= gbeta / n
        d -= xhat * (ggamma / n)
        d *= gamma * inv

    def _row_blocks(self, X: np.ndarray, scaling: RowScaling | None):
        """``(lo, hi, input rows, workspace)`` for blocks of about ``BLOCK_BYTES`` of rows of
        ``X``, standardized by ``scaling`` into arrays of one block, reused (so that a pass
        over a large X makes no array of its size but its result)."""
        n = X.shape[0]
        per_row = self.dtype.itemsize * (self.sizes[0] * (1 if scaling is None else 3) + 2 * sum(self.sizes[1:]))
        step = max(1, min(n, BLOCK_BYTES // per_row))
        ws = None
        for lo in range(0, max(n, 1), step):
            hi = min(n, lo + step)
            if ws is None or hi - lo != ws.h[0].shape[0]:
                ws = self._workspace(hi - lo, cache=False)
            yield lo, hi, self._input_rows(X, slice(lo, hi), scaling, ws), ws

    def outputs(self, theta: np.ndarray, X: np.ndarray, scaling: RowScaling | None = None) -> np.ndarray:
        """The logits of all rows of ``X`` (raw rows standardized by ``scaling``), shape
        (n, sizes[-1]), in inference mode, computed in blocks of rows."""
        n = X.shape[0]
        out = None
        for lo, hi, x, ws in self._row_blocks(X, scaling):
            z = self.forward(theta, x, ws=ws)
            if hi - lo == n:
                return z  # one block: its workspace is this call's own
            if out is None:
                out = np.empty((n, z.shape[1]), self.dtype)
            out[lo:hi] = z
        assert out is not None  # (n > one block)
        return out

    def set_exact_stats(self, theta: np.ndarray, X: np.ndarray, scaling: RowScaling | None = None) -> None:
        """Running batch-norm statistics := the exact mean and (unbiased) variance of each
        normalized layer's input over X (raw rows standardized by ``scaling``), layer by
        layer, the earlier layers normalized by the statistics just computed. One pass over
        X's blocks of rows per normalized layer, their moments merged by Chan et al.'s
        formulas in float64."""
        if not any(self.bn):
            return
        n = X.shape[0]
        for i in range(self.L - 1):
            if not self.bn[i]:
                continue
            count, mean, m2 = 0, np.zeros(self.sizes[i + 1]), np.zeros(self.sizes[i + 1])
            for lo, hi, x, ws in self._row_blocks(X, scaling):
                # The layers before i in inference mode: with the statistics just set.
                u = self.forward(theta, x, ws=ws, upto=i)
                m = hi - lo
                bmean = u.mean(axis=0, dtype=np.float64)
                bm2 = np.square(u - bmean).sum(axis=0)
                delta = bmean - mean
                total = count + m
                mean += delta * (m / total)
                m2 += bm2 + delta * delta * (count * m / total)
                count = total
            self.running_mean[i][...] = mean
            self.running_var[i][...] = m2 / (n - 1) if n > 1 else m2

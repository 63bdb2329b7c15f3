"""Loss callables for fastgd.train built on the fused linear-model kernel: one reads the
mini-batch's rows in place (train(gather=False)), one takes copied batches. Shared by the
tests that check the two paths train alike."""

from __future__ import annotations

import numpy as np

from fastgd import _core


def linear_losses(K: int, d: int, grad: np.ndarray):
    """``(in_place, gathered)`` log-loss callables for K x d coefficients plus K intercepts
    packed in one parameter array; ``in_place`` writes its gradient into ``grad``."""

    def in_place(params, Xa, ya, wa, rows):
        th = params[0]
        kw = dict(start=rows.start, stop=rows.stop) if isinstance(rows, slice) else dict(rows=rows)
        value = _core.linear_objective("log_loss", Xa, ya, th[:K * d].reshape(K, d), th[K * d:],
                                       grad[:K * d].reshape(K, d), grad[K * d:], sample_weight=wa, **kw)
        return value, [grad]

    def gathered(params, Xb, yb, wb):
        th = params[0]
        g = np.empty_like(th)
        value = _core.linear_objective("log_loss", Xb, yb, th[:K * d].reshape(K, d), th[K * d:],
                                       g[:K * d].reshape(K, d), g[K * d:], sample_weight=wb)
        return value, [g]

    return in_place, gathered

"""The functional layer: one kernel call per step for all arrays of a group, one function
per update rule of the rule table (the names of ``fastgd._core.rule_specs()``).

For users who keep their own state. Each function updates ``params`` and the state lists
in place from ``grads``; all lists are aligned (one entry per parameter), arrays must be
C-contiguous, writeable (grads may be read-only) and of the parameter's dtype and shape,
else a ``TypeError``/``ValueError`` names the argument and nothing is written. No two arrays
written (params and states) may share memory (arrays that only touch are fine; the grads
are only read), and every option must pass its check in the rule table (a NaN, an infinity
or a value out of range is a ``ValueError`` naming the argument).

Each function takes ``(params, grads, <its state lists, in the rule's order>, *, step,
<its group scalars>, <its options>, grad_scale=1.0, clip_value=inf)``; its docstring gives the
signature in full. A state list that the options do not need may be None. Common keyword
arguments:

- ``step``: the step count *after* this step (1 on the first call); drives bias corrections.
- ``grad_scale``: every gradient is read as ``grad_scale * g`` (a clipping coefficient,
  negative to maximize); ``clip_value``: then clamped to ``[-clip_value, clip_value]``.

Hyperparameters have the names and meanings of the classes in :mod:`fastgd.optim`, whose
docstrings give each update in full (a pair such as ``betas`` is passed as ``beta1, beta2``).
State arrays start at zero except where the rule table says otherwise (Adagrad's
``state_sum`` starts at ``initial_accumulator_value``); a group scalar (NAdam's
``mu_product``) starts at its initial value in ``rule_specs()`` and the function returns its
new value.

Example::

    import numpy as np, fastgd.functional as F
    p = np.zeros(10, np.float32); m = np.zeros_like(p); v = np.zeros_like(p)
    for t in range(1, 101):
        g = compute_grad(p)
        F.adam([p], [g], [m], [v], None, step=t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
               weight_decay=0.0, amsgrad=False, decoupled_weight_decay=False)
"""

from fastgd import _core
from fastgd.clip import total_norm
from fastgd.optim._base import RULE_SPECS

_RULES = list(RULE_SPECS)  # the rule table's names, in its order
globals().update({name: getattr(_core, name) for name in _RULES})

__all__ = [*_RULES, "total_norm"]

"""fastgd: gradient descent for NumPy with fused SIMD + OpenMP C++ kernels.

::

    import numpy as np, fastgd as fg
    W = np.zeros((784, 10), np.float32)
    opt = fg.Adam([W], lr=1e-3, clip_norm=1.0)
    opt.step([grad_W])          # W is updated in place, in one fused pass
"""

# First: the OpenMP runtime reads its wait policy when it loads, with fastgd._core.
from fastgd import _openmp_wait  # noqa: F401, I001
from fastgd import datasets, functional, losses, models, optim, schedules, stopping
from fastgd.clip import NonFiniteNormError, clip_grad_norm_, clip_grad_value_, total_norm
from fastgd.history import History
from fastgd.models import LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor
from fastgd.optim import *  # noqa: F403  (every rule's class)
from fastgd.optim import Optimizer, get_optimizer
from fastgd.persistence import load, load_state, save_state
from fastgd.runtime import (
    _check_env_level,
    available_simd_levels,
    get_num_threads,
    num_threads,
    set_num_threads,
    set_simd_level,
    simd_level,
)
from fastgd.streaming import ChunkStream
from fastgd.training import DivergenceWarning, LRFinderResult, OptimizeResult, lr_find, minimize, train

__version__ = "0.1.0"

__all__ = [cls.__name__ for cls in optim.rule_classes()]
__all__ += [
    "Optimizer", "clip_grad_norm_", "clip_grad_value_", "total_norm", "NonFiniteNormError", "functional", "schedules",
    "set_num_threads", "get_num_threads", "num_threads", "simd_level", "available_simd_levels",
    "set_simd_level", "__version__",
]
__all__ += ["train", "minimize", "lr_find", "History", "DivergenceWarning", "OptimizeResult", "LRFinderResult",
            "get_optimizer", "stopping"]
__all__ += ["models", "losses", "LinearRegression", "LogisticRegression", "MLPClassifier", "MLPRegressor"]
__all__ += ["load", "datasets", "save_state", "load_state"]
__all__ += ["ChunkStream"]

_check_env_level()

"""Training loops over the optimizers: :func:`train` (mini-batch epochs with validation,
stopping criteria and divergence handling), :func:`minimize` (scipy-like, for a function of
one array) and :func:`lr_find` (the learning-rate range test).

::

    import numpy as np, fastgd as fg

    def loss_and_grad(params, X, y, w):          # w: sample weights of the batch, or None
        (coef,) = params
        r = X @ coef - y
        return 0.5 * np.mean(r**2), [X.T @ r / len(y)]

    coef = np.zeros(X.shape[1])
    history = fg.train(loss_and_grad, [coef], X, y, optimizer="adam", lr=1e-2, batch_size=64,
                       validation_data=(X_val, y_val), stopping=[fg.stopping.EarlyStopping()])

:func:`train` is a short driver (``_train``) over four parts, each with one job:

* the batch source (``_batches``): which rows each step reads: arrays, a stream's shuffle
  buffer, a rank's shard under MPI; every random draw of an epoch;
* the step (``_steps``): one batch in Python, or whole stretches of an epoch in one call of
  the loss's ``run_batches`` (the linear models' C++ loop), with the same bits;
* the guard (``_guard``): the divergence rule (one definition, in C++, that both steps
  apply) and the rollback to the last good point;
* the record (``_record``): the epoch's ``train_loss``, its History record and validation
  scores, the stopping criteria, the callbacks and the progress bar.
"""

from fastgd.training._common import DivergenceWarning
from fastgd.training._lr_find import LRFinderResult, lr_find
from fastgd.training._minimize import OptimizeResult, minimize
from fastgd.training._steps import _checks_steps as _checks_steps  # (the tests ask it)
from fastgd.training._train import train

__all__ = ["train", "minimize", "lr_find", "DivergenceWarning", "OptimizeResult", "LRFinderResult"]

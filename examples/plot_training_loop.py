"""
The training loop for your own model
====================================

:func:`fastgd.training.train` runs shuffled mini-batch epochs over any model whose loss and
gradient you can write in NumPy: it calls ``loss_and_grad(params, X_batch, y_batch,
w_batch)``, steps the optimizer, scores the validation data after each epoch and stops when
a criterion says so. Here: a least-squares model with early stopping.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastgd as fg
from fastgd import datasets


def loss_and_grad(params, X, y, w):
    """Half the mean squared error and its gradient (``w``: sample weights, unused here)."""
    coef, intercept = params
    r = X @ coef + intercept - y
    return 0.5 * float(np.mean(r**2)), [X.T @ r / len(y), np.array([r.mean()])]


X, y = datasets.make_regression(n_samples=2000, n_features=10, noise=0.5, random_state=0)
X = (X - X.mean(axis=0)) / X.std(axis=0)            # the loop trains on X as given
X_train, y_train, X_val, y_val = X[:1600], y[:1600], X[1600:], y[1600:]

coef, intercept = np.zeros(X.shape[1]), np.zeros(1)
history = fg.train(loss_and_grad, [coef, intercept], X_train, y_train, optimizer="adam", lr=0.05,
                   batch_size=64, max_epochs=200, validation_data=(X_val, y_val), random_state=0,
                   stopping=[fg.stopping.EarlyStopping(patience=5)])

print(f"{len(history)} epochs; {history.stop_reason}")
print(f"best validation loss {min(history['val_loss']):.4f}")

# %%
# The same :class:`~fastgd.history.History` as the estimators keep:

fig, ax = plt.subplots(figsize=(7, 4))
history.plot(ax=ax)
fig.tight_layout()

"""
Fitting an estimator and plotting its loss
==========================================

The estimators follow scikit-learn's conventions: hyperparameters in the constructor,
``fit`` returns the estimator, learned attributes end in ``_``. ``history_`` records every
epoch, and ``history_.plot`` draws the train and validation losses with the learning rate.
"""

import matplotlib.pyplot as plt

import fastgd as fg
from fastgd import datasets

X, y = datasets.make_classification(n_samples=3000, n_features=20, n_classes=3, random_state=0)
X_train, y_train, X_test, y_test = X[:2400], y[:2400], X[2400:], y[2400:]

lr = fg.schedules.cosine(0.02, T_max=30 * 2400 // 64)
clf = fg.LogisticRegression(optimizer="adam", lr=lr, batch_size=64, max_epochs=30,
                            early_stopping=True, random_state=0).fit(X_train, y_train)

print(f"{len(clf.history_)} epochs, stopped by: {clf.history_.stop_reason}")
print(f"test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# The exact optimum of the same objective, by Newton's method, for comparison:

exact = fg.LogisticRegression(solver="newton").fit(X_train, y_train)
print(f"Newton's test accuracy {exact.score(X_test, y_test):.3f}")

# %%
# The loss per epoch (train and the held-out validation fraction) and the learning rate:

fig, ax = plt.subplots(figsize=(7, 4))
clf.history_.plot(ax=ax)
fig.tight_layout()

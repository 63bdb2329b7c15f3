"""Estimators with scikit-learn's API, trained by fastgd's optimizers (scikit-learn itself
is not needed to use them, only to combine them with its tools).

::

    from fastgd.models import LogisticRegression
    clf = LogisticRegression(optimizer="adam", lr=1e-2, penalty="l2", alpha=1e-4).fit(X, y)
    clf.predict_proba(X_test); clf.history_.plot()
"""

from fastgd.models._base import ConvergenceWarning, DataConversionWarning, NotFittedError
from fastgd.models.linear import LinearRegression, LogisticRegression
from fastgd.models.mlp import MLPClassifier, MLPRegressor

__all__ = ["LinearRegression", "LogisticRegression", "MLPClassifier", "MLPRegressor", "ConvergenceWarning",
           "DataConversionWarning", "NotFittedError"]

"""The TypeError for a keyword argument that a function does not take: it names the function
(not whatever inner call the keyword would have reached), lists the keywords it does take,
and suggests the one meant, from the names users bring from elsewhere (scikit-learn, scipy,
torch, Keras) or by spelling."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["SYNONYMS", "unexpected_keyword"]

# A name from another library's vocabulary -> fastgd's names for what it may mean, in order.
# fastgd counts passes over the data in epochs (``max_epochs``: train, the estimators) and
# optimizer steps in iterations (``max_iter``: minimize, as scipy) or steps (``num_steps``).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "max_iter": ("max_epochs",),
    "maxiter": ("max_iter", "max_epochs"),
    "max_steps": ("max_iter", "num_steps", "max_epochs"),
    "n_iter": ("max_iter", "max_epochs"),
    "epochs": ("max_epochs", "max_iter"),
    "n_epochs": ("max_epochs", "max_iter"),
    "max_epochs": ("max_iter", "num_steps"),
    "learning_rate": ("lr",),
    "learning_rate_init": ("lr",),
    "eta0": ("lr",),
    "step_size": ("lr",),
    "C": ("alpha",),
    "l2": ("alpha", "weight_decay"),
    "weight_decay": ("alpha",),
    "seed": ("random_state",),
    "callbacks": ("callback",),
    "callback": ("callbacks",),
}


def _suggestion(given: str, valid: Sequence[str]) -> str | None:
    for name in SYNONYMS.get(given, ()):
        if name in valid:
            return name
    close = difflib.get_close_matches(given, list(valid), n=1)
    return close[0] if close else None


def unexpected_keyword(function: str, given: str, valid: Sequence[str], *, passed_on: Sequence[str] = (),
                       to: str = "", what: str = "keyword argument", whose: str = "its keywords") -> TypeError:
    """``TypeError("function got an unexpected keyword argument 'given' (did you mean
    ...?); its keywords are: ..., and those of <to>: ...")``: ``valid`` the function's own
    keywords, ``passed_on`` those it passes on ``to`` another (an optimizer's options),
    ``what`` what ``given`` is, ``whose`` what ``valid`` are."""
    hint = _suggestion(given, [*valid, *passed_on])
    message = f"{function} got an unexpected {what} {given!r}"
    if hint is not None:
        message += f" (did you mean {hint!r}?)"
    message += f"; {whose} are: {', '.join(valid)}"
    if passed_on:
        message += f", and those of {to}: {', '.join(k for k in passed_on if k not in valid)}"
    return TypeError(message)

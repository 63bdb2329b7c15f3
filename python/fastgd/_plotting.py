"""The figure set-up every plot of fastgd shares (matplotlib is optional)."""

from __future__ import annotations

from typing import Any


def axes_for(ax: Any, path: Any, who: str) -> tuple[Any, Any]:
    """``(figure, axes)`` to draw on: ``ax`` if given, else a new figure's axes. Raises a clear
    ImportError naming ``who`` when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"{who} needs matplotlib: pip install matplotlib") from None
    if ax is None:
        if path is not None:
            # A figure that is only saved needs no GUI backend, nor pyplot's bookkeeping.
            from matplotlib.figure import Figure
            fig = Figure()
        else:
            import matplotlib.pyplot as plt
            fig = plt.figure()
        ax = fig.add_subplot()
    return ax.get_figure(), ax

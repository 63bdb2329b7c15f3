"""The figure set-up every plot of fastgd shares (matplotlib is optional)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any


def axes_for(ax: Any, path: Any, who: str) -> tuple[Any, Any]:
    """``(figure, axes)`` to draw on: ``ax`` if given, else a new figure's axes. Raises a clear
    ImportError naming ``who`` when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"{who} needs matplotlib: pip install matplotlib") from None
    if ax is None:
        # Constrained layout: the labels of a twin axis on the right and a title fit in the
        # figure rather than being cut at its edge.
        if path is not None:
            # A figure that is only saved needs no GUI backend, nor pyplot's bookkeeping.
            from matplotlib.figure import Figure
            fig = Figure(layout="constrained")
        else:
            import matplotlib.pyplot as plt
            fig = plt.figure(layout="constrained")
        ax = fig.add_subplot()
    return ax.get_figure(), ax


def integer_ticks(axis: Any) -> None:
    """Ticks of ``axis`` (an x- or y-axis) at whole numbers only: epochs, steps."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def rate_axis(ax: Any, values: Sequence[float]) -> None:
    """A learning-rate axis for ``values`` (NaN where none): from 0, ticks written plainly
    (``0.01``, not ``1e-2`` with an offset); a constant rate gets one tick, at its value, in
    the middle of the axis (autoscaling would spread ticks over +-4% of it)."""
    from matplotlib.ticker import FuncFormatter

    finite = [v for v in values if math.isfinite(v)]
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    if finite and min(finite) == max(finite):
        v = finite[0]
        ax.set_yticks([v])
        ax.set_ylim(*((0.0, 2 * v) if v > 0 else (v - 1, v + 1)))
    elif finite and min(finite) >= 0:
        ax.set_ylim(bottom=0.0)


def title(text: str, width: int = 80) -> str:
    """``text`` broken into lines of at most ``width`` characters, for a title that would
    otherwise run past the axes."""
    return "\n".join(textwrap.wrap(text, width)) or text

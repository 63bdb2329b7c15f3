"""bench/compare.py's chart, read from its matplotlib Figure (not its pixels): no two tick
labels overlap, every text lies inside the figure, titles clear of each other, and no legend
covers a bar. Drawn from the published results."""

from __future__ import annotations

import importlib
import itertools
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
PUBLISHED = BENCH / "published" / "compare.json"


@pytest.fixture(scope="module")
def figure():
    pytest.importorskip("matplotlib")
    if not PUBLISHED.exists():
        pytest.skip("no published results to draw")
    sys.path.insert(0, str(BENCH))
    try:
        compare = importlib.import_module("compare")
    finally:
        sys.path.remove(str(BENCH))
    fig = compare.chart(json.loads(PUBLISHED.read_text()))
    fig.draw_without_rendering()
    return fig


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _tick_labels(axis):
    low, high = sorted(axis.get_view_interval())
    return [(t.label1, t.get_loc()) for t in axis.get_major_ticks()
            if t.label1.get_visible() and t.label1.get_text() and low <= t.get_loc() <= high]


def _axes(fig):
    return [ax for ax in fig.axes if ax.axison]


def test_no_two_tick_labels_overlap(figure):
    for ax in _axes(figure):
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [label.get_window_extent() for label, _ in _tick_labels(axis)]
            for a, b in itertools.combinations(boxes, 2):
                assert not _overlap(a, b), (ax.get_title(), [lb.get_text() for lb, _ in _tick_labels(axis)])


def test_every_title_and_label_is_inside_the_figure(figure):
    page = figure.bbox
    texts = [figure._suptitle] if figure._suptitle is not None else []
    for ax in _axes(figure):
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        texts += [label for axis in (ax.xaxis, ax.yaxis) for label, _ in _tick_labels(axis)]
    for t in texts:
        box = t.get_window_extent()
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, \
            t.get_text()


def test_titles_do_not_run_into_each_other(figure):
    titles = [ax.title for ax in _axes(figure)] + [figure._suptitle]
    for a, b in itertools.combinations(titles, 2):
        assert not _overlap(a.get_window_extent(), b.get_window_extent()), (a.get_text(), b.get_text())


def test_no_legend_covers_a_bar(figure):
    for ax in _axes(figure):
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent()
        for container in ax.containers:
            for bar in container:
                assert not _overlap(box, bar.get_window_extent()), ax.get_title()

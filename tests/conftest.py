"""Shared fixtures: every SIMD level the CPU can run, and a low parallel threshold."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd
from fastgd import _core


def pytest_report_header(config):
    """The versions a run tested, at the top of its output (CI runs several)."""
    return (f"fastgd {fastgd.__version__} from {fastgd.__file__}, NumPy {np.__version__}, SIMD level "
            f"{fastgd.simd_level()} of {', '.join(fastgd.available_simd_levels())}")


@pytest.fixture(params=fastgd.available_simd_levels())
def simd_level(request):
    """Run the test once per available SIMD level, restoring the level in use afterwards."""
    original = fastgd.simd_level()
    fastgd.set_simd_level(request.param)
    try:
        assert fastgd.simd_level() == request.param
        yield request.param
    finally:
        fastgd.set_simd_level(original)


@pytest.fixture
def threaded():
    """Make every kernel call above 1,000 elements run on 3 threads (the default threshold
    keeps test-sized calls serial), restoring the threshold and thread count afterwards."""
    threshold = _core.get_parallel_threshold()
    _core.set_parallel_threshold(1000)
    try:
        with fastgd.num_threads(3):
            yield 3
    finally:
        _core.set_parallel_threshold(threshold)

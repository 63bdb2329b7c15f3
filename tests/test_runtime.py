"""SIMD level selection at import and at run time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import fastgd as fg


def _level_in_subprocess(env_value):
    env = dict(os.environ, FASTGD_ISA=env_value)
    code = "import fastgd; print(fastgd.simd_level())"
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                         env=env, capture_output=True, text=True, timeout=120)
    return out


def test_default_is_the_best_supported_level():
    assert fg.simd_level() == fg.available_simd_levels()[-1] or os.environ.get("FASTGD_ISA")


@pytest.mark.parametrize("level", fg.available_simd_levels())
def test_env_variable_forces_a_level(level):
    out = _level_in_subprocess(level)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == level


def test_env_variable_with_unavailable_level_warns_and_falls_back():
    out = _level_in_subprocess("no-such-level")
    assert out.returncode != 0
    assert "FASTGD_ISA='no-such-level' is not available" in out.stderr


def test_set_simd_level_rejects_unknown():
    with pytest.raises(ValueError, match="unknown SIMD level"):
        fg.set_simd_level("sse9")


def test_levels_are_named():
    assert set(fg.available_simd_levels()) <= {"baseline", "avx2", "avx512", "neon", "scalar"}
    assert fg.simd_level() in fg.available_simd_levels()


@pytest.mark.parametrize("n", ["1", "3"])
def test_default_threads_follow_omp_num_threads(n):
    env = dict(os.environ, OMP_NUM_THREADS=n)
    out = subprocess.run([sys.executable, "-c", "import fastgd; print(fastgd.get_num_threads())"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == n

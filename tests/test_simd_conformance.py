"""Every SIMD level this CPU runs, checked bit for bit against the scalar level in C++.

tests/conformance/conformance.cpp compiles the kernel sources at every level of the
architecture plus the portable scalar one, and steps every update rule, option, dtype, size
around the vector widths and clipping mode through both (tests/aarch64.sh runs the same
program for the NEON level under emulation). Here it is built natively into
build/tests/conformance (reused: a second run only rebuilds what changed) and run once per
level. Needs CMake and a C++ compiler, as building fastgd does; ``pip install ".[test]"``
brings CMake and Ninja.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import fastgd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests", "conformance")
# Two levels below build/: not a build tree that tests/test_simd_build.py reads.
BUILD = os.path.join(ROOT, "build", "tests", "conformance")


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def conformance() -> str:
    """The conformance program, configured and built if it is missing or out of date."""
    cmake = shutil.which("cmake")
    assert cmake, 'the conformance test needs CMake on PATH (pip install ".[test]" installs it)'
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        configured = _run([cmake, "-S", SOURCE, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release", *generator])
        assert configured.returncode == 0, f"configuring {SOURCE} failed:\n{configured.stdout}\n{configured.stderr}"
    built = _run([cmake, "--build", BUILD])
    assert built.returncode == 0, f"building {BUILD} failed:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}"
    return os.path.join(BUILD, "conformance")


@pytest.mark.parametrize("level", fastgd.available_simd_levels())
def test_level_has_the_bits_of_the_scalar_level(conformance, level):
    result = _run([conformance, level])
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"{level} differs from the scalar level:\n{report[-6000:]}"
    assert f"{level} vs scalar" in report and " 0 mismatches" in report, report

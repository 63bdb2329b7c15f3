"""The baseline build runs on an x86-64 CPU without AVX, proved by running on one.

qemu's user-mode emulator with ``-cpu Nehalem`` (SSE4.2, no AVX: an AVX instruction there is
SIGILL) runs this interpreter on the kernel tests. fastgd's dispatcher then sees no AVX and
takes the baseline level, so every baseline kernel executes under a CPU that would trap any
AVX instruction, and its results are checked against the NumPy reference as usual.

Opt-in, as it takes ~6 minutes: ``FASTGD_TEST_BASELINE_CPU=1 python -m pytest
tests/test_baseline_cpu.py`` with ``qemu-x86_64`` on the PATH (Debian: ``apt-get install
qemu-user``).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
QEMU = shutil.which("qemu-x86_64")

pytestmark = [
    pytest.mark.skipif(os.environ.get("FASTGD_TEST_BASELINE_CPU") != "1",
                       reason="opt-in: set FASTGD_TEST_BASELINE_CPU=1 (runs the kernel tests under qemu, ~6 min)"),
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or QEMU is None,
                       reason="needs x86-64 and qemu-x86_64 (qemu-user)"),
]

NO_AVX_CPU = "Nehalem"


def _under_qemu(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([QEMU, "-cpu", NO_AVX_CPU, sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=HERE)


def test_the_emulated_cpu_traps_avx():
    """The premise: under this CPU model an AVX instruction kills the process."""
    code = ("import ctypes, mmap; buf = mmap.mmap(-1, 4096, prot=7); "
            "buf.write(bytes([0xc5, 0xfc, 0x58, 0xc0, 0xc3])); "  # vaddps ymm0, ymm0, ymm0; ret
            "f = ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(buf))); f()")
    res = _under_qemu("-c", code, timeout=120)
    assert res.returncode in (-4, 132) or "Illegal instruction" in res.stderr, (res.returncode, res.stderr)


def test_baseline_level_is_chosen_without_avx():
    res = _under_qemu("-c", "import fastgd; print(fastgd.simd_level(), fastgd.available_simd_levels())", timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["baseline", "['baseline']"]


def test_kernel_tests_pass_on_a_cpu_without_avx():
    res = _under_qemu("-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "test_update_rules.py",
                      "test_clipping.py", "test_linear_objective.py", "test_activations.py", timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert " passed" in res.stdout

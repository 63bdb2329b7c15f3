"""The SIMD is explicit and the levels stay apart, checked on the compiled objects.

Every kernel source is compiled once per instruction-set level. Two things could go wrong
silently: a level's objects might not contain the vector instructions it exists for, and a
function compiled into several levels (a shared inline or template) might be merged by the
linker into one copy built with AVX, which the baseline level would then call on a CPU
without AVX. These tests read the objects of the build tree that `pip install .` leaves in
build/ (skipped when there is none, or without binutils).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import pytest

import fastgd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sanitized(tree: str) -> bool:
    # A sanitizer build (tests/sanitize.sh, the "sanitize" preset) instruments every object
    # and shares the sanitizers' helpers between the levels: not what a wheel ships.
    cache = os.path.join(os.path.dirname(tree), "CMakeCache.txt")
    if not os.path.exists(cache):
        return False
    with open(cache, encoding="utf-8", errors="replace") as f:
        return "-fsanitize" in f.read()


# The newest build tree (pyproject.toml: build-dir = "build/{wheel_tag}"), sanitizer builds left out.
_trees = sorted((t for t in glob.glob(os.path.join(ROOT, "build", "*", "CMakeFiles")) if not _sanitized(t)),
                key=os.path.getmtime)
BUILD = _trees[-1] if _trees else None

pytestmark = pytest.mark.skipif(
    BUILD is None or shutil.which("objdump") is None or shutil.which("nm") is None,
    reason="needs the build tree of `pip install .` and binutils (objdump, nm)",
)

X86_LEVELS = {"sse2": "baseline", "avx2": "avx2", "avx512": "avx512"}


def _objects(level):
    return sorted(glob.glob(os.path.join(BUILD, f"fastgd_kernels_{level}.dir", "**", "*.o"), recursive=True))


def _levels():
    return [lvl for lvl in X86_LEVELS if _objects(lvl)]


def _disassembly(level):
    return "\n".join(
        subprocess.run(["objdump", "-d", "--no-show-raw-insn", o], capture_output=True, text=True, check=True).stdout
        for o in _objects(level)
    )


def _mnemonics(text):
    for line in text.splitlines():
        if "\t" in line:
            ins = line.split("\t")[-1].strip()
            if ins:
                yield ins.split()[0], ins


def test_build_tree_matches_installed_levels():
    if not _levels():
        pytest.skip("not an x86-64 build")
    assert [X86_LEVELS[lvl] for lvl in _levels()] == fastgd._core.compiled_simd_levels()


def test_baseline_objects_have_no_avx_instructions():
    if "sse2" not in _levels():
        pytest.skip("not an x86-64 build")
    vex = [ins for mn, ins in _mnemonics(_disassembly("sse2")) if mn.startswith("v") or re.search(r"%[yz]mm", ins)]
    assert vex == [], f"baseline objects use AVX instructions: {vex[:5]}"
    packed = [ins for mn, ins in _mnemonics(_disassembly("sse2")) if re.fullmatch(r"(mul|add|div|sqrt)p[sd]", mn)]
    assert packed, "baseline objects do not use packed SSE2 arithmetic"


@pytest.mark.parametrize(("level", "register"), [("avx2", "ymm"), ("avx512", "zmm")])
def test_level_objects_use_their_vectors_and_fma(level, register):
    if level not in _levels():
        pytest.skip(f"{level} not compiled in this build")
    fma = [ins for mn, ins in _mnemonics(_disassembly(level)) if mn.startswith("vfmadd") and f"%{register}" in ins]
    assert len(fma) > 50, f"{level} objects have only {len(fma)} {register} FMA instructions"


def test_no_code_shared_between_levels():
    levels = _levels()
    if len(levels) < 2:
        pytest.skip("one level only")
    allowed = {"DW.ref.__gxx_personality_v0"}  # a data pointer for C++ exception handling, no code

    def weak(level):
        out = subprocess.run(["nm", "--defined-only", *_objects(level)], capture_output=True, text=True,
                             check=True).stdout
        return {parts[2] for parts in (line.split() for line in out.splitlines())
                if len(parts) == 3 and parts[1] in "WVu"}

    sets = {lvl: weak(lvl) for lvl in levels}
    for i, a in enumerate(levels):
        for b in levels[i + 1:]:
            shared = (sets[a] & sets[b]) - allowed
            assert not shared, f"{a} and {b} share weak symbols (the linker keeps one copy): {sorted(shared)[:5]}"

"""How long fastgd's OpenMP worker threads spin after a parallel region before they sleep.

GNU OpenMP's workers busy-wait for new work after every parallel region: 300,000 rounds of
``pause`` by default, which at the tens of cycles a ``pause`` takes on current CPUs keeps a
core busy for milliseconds after every region. A training loop calls a parallel optimizer
step, then computes the next gradient, often with NumPy's BLAS on every core: while it
spins, a fastgd worker holds a core that BLAS needs, and BLAS's own threads (which poll too)
hold it back in turn. That is the oversubscription between the two thread pools; LLVM's
runtime does the same for 200 ms (``KMP_BLOCKTIME``).

The runtime reads its setting once, when it loads, so it is set here, before
``fastgd._core`` (which links the runtime) is first imported, and the process environment is
put back straight after: nothing else sees the change, and child processes start with the
environment the user gave. fastgd's wheels carry a private copy of the runtime, so no other
library's threads are affected. A runtime already loaded by another module keeps its own
setting (then this does nothing). Any of ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT`` or
``KMP_BLOCKTIME`` set by the user wins: nothing is changed.

The spin kept, ``SPIN_COUNT`` rounds (a thirtieth of the default), still covers the gap
between back-to-back steps (only the Python between two calls), so a tight loop of steps
never waits for a sleeping worker; a longer gap costs one wake-up (a futex call).
"""

from __future__ import annotations

import os

# GNU OpenMP: rounds of spinning (GOMP_SPINCOUNT); LLVM/Intel OpenMP: milliseconds (KMP_BLOCKTIME).
SPIN_COUNT = 10_000
BLOCKTIME_MS = 1

_USER_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def load_core_with_short_spin() -> bool:
    """Import fastgd._core with the short spin; True if the variables were set for its load
    (the user set none of them)."""
    if any(v in os.environ for v in _USER_VARS):
        from fastgd import _core  # noqa: F401
        return False
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    os.environ["KMP_BLOCKTIME"] = str(BLOCKTIME_MS)
    try:
        from fastgd import _core  # noqa: F401
    finally:
        del os.environ["GOMP_SPINCOUNT"]
        del os.environ["KMP_BLOCKTIME"]
    return True


short_spin = load_core_with_short_spin()

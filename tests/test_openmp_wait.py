"""fastgd's OpenMP workers spin only briefly after a region (fastgd._openmp_wait), so that they
do not hold cores that NumPy's BLAS needs next; the user's own settings win.

Each case runs in a fresh interpreter: the OpenMP runtime reads its setting once, when it
loads, and this process has loaded it already."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and GNU OpenMP's setting")

_ENV_PROBE = """
import json, os, fastgd
print(json.dumps({"applied": fastgd._openmp_wait.short_spin,
                  "env": {k: os.environ.get(k) for k in ("GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_WAIT_POLICY")}}))
"""

# CPU time burnt by fastgd's OpenMP worker over steps that each stand alone (a sleep after
# each): the worker's share of the step's work, plus its spin before it sleeps.
_SPIN_PROBE = """
import json, os, time
import numpy as np
def tids():
    return {int(t) for t in os.listdir("/proc/self/task")}
def cpu(ts):
    s = 0
    for t in ts:
        f = open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()
        s += int(f[11]) + int(f[12])
    return s / os.sysconf("SC_CLK_TCK")
before = tids()
import fastgd
fastgd.set_num_threads(2)
p = np.zeros(1 << 18, np.float32)
g = np.full_like(p, 1e-3)
opt = fastgd.Adam([p], lr=1e-3)
opt.step([g])
workers = tids() - before - {os.getpid()}
steps = 40
c0 = cpu(workers)
for _ in range(steps):
    opt.step([g])
    time.sleep(0.02)
print(json.dumps({"workers": len(workers), "ms_per_step": 1e3 * (cpu(workers) - c0) / steps}))
"""


def _run(code: str, **env_extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_WAIT_POLICY")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_short_spin_is_set_for_the_runtime_and_the_environment_put_back():
    r = _run(_ENV_PROBE)
    assert r["applied"] is True
    assert r["env"] == {"GOMP_SPINCOUNT": None, "KMP_BLOCKTIME": None, "OMP_WAIT_POLICY": None}


@pytest.mark.parametrize("var,value", [("OMP_WAIT_POLICY", "active"), ("GOMP_SPINCOUNT", "300000"),
                                       ("KMP_BLOCKTIME", "200")])
def test_a_setting_of_the_user_wins(var, value):
    r = _run(_ENV_PROBE, **{var: value})
    assert r["applied"] is False
    assert r["env"][var] == value
    assert all(v is None for k, v in r["env"].items() if k != var)


def test_workers_do_not_spin_for_milliseconds_after_a_step():
    # libgomp's default (300,000 rounds of pause) burns 1-8 ms of a core after every region,
    # depending on the CPU; the short spin is ~0.05-0.5 ms. The worker's share of a 2^18-element
    # step is ~0.1 ms. CPU time only grows while a thread runs, so a busy machine cannot push
    # this figure up, only down.
    r = _run(_SPIN_PROBE)
    if r["workers"] == 0:
        pytest.skip("no OpenMP worker thread was started (one thread, or a build without OpenMP)")
    assert r["ms_per_step"] < 1.5, r

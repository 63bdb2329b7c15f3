"""Run under mpiexec by tests/test_distributed.py: DistributedOptimizer's steps against a
single-process optimizer stepping on the averaged gradients, for every rule, both dtypes,
every SIMD level, with clip_norm, clip_value and nonfinite="skip"; the ranks' final
parameters go to OUT/optimizer_steps_rank<r>.npz for the test to compare bit for bit."""

from __future__ import annotations

import sys

import numpy as np
from mpi4py import MPI

import fastgd
from fastgd.distributed import DistributedOptimizer
from fastgd.optim.registry import OPTIMIZERS, get_optimizer

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
out = sys.argv[1]
reduction = sys.argv[2] if len(sys.argv) > 2 else "allreduce"

SHAPES = [(7,), (3, 11), (33,)]  # around and between SIMD widths
OPTIONS = [{}, {"clip_norm": 0.05}, {"clip_value": 0.3}, {"nonfinite": "skip"},
           {"clip_norm": 0.05, "nonfinite": "skip"}]
STEPS = 6
NAN_STEP = 3  # rank size-1 sends a NaN at this step under nonfinite="skip"

results: dict[str, np.ndarray] = {}
checked = 0
for level in fastgd.available_simd_levels():
    fastgd.set_simd_level(level)
    for name in OPTIMIZERS:
        for dtype in (np.float32, np.float64):
            for oi, options in enumerate(OPTIONS):
                # Different starting points on every rank: the wrapper broadcasts rank 0's.
                init_rng = np.random.default_rng(1000 + rank)
                params = [init_rng.standard_normal(s).astype(dtype) for s in SHAPES]
                initial0 = comm.bcast([p.copy() for p in params] if rank == 0 else None, root=0)
                dopt = DistributedOptimizer(get_optimizer(name, params, lr=0.01, **options), comm,
                                            reduction=reduction)
                for p, q in zip(params, initial0):
                    assert np.array_equal(p, q), "parameters were not broadcast from rank 0"
                ref_params = [q.copy() for q in initial0]
                ref = get_optimizer(name, ref_params, lr=0.01, **options)
                for t in range(STEPS):
                    rng = np.random.default_rng([t, rank, oi])
                    local = [(0.2 * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
                    if "nonfinite" in options and t == NAN_STEP and rank == size - 1:
                        local[1][1, 2] = np.nan
                    everyone = comm.allgather(local)
                    # The mean as the definition says: the sum in rank order, then / N.
                    summed = []
                    for i in range(len(SHAPES)):
                        s = everyone[0][i].copy()
                        for r in range(1, size):
                            s += everyone[r][i]
                        summed.append(s)
                    mean = [(s / dtype(size)).astype(dtype) for s in summed]
                    if t % 3 == 1:
                        dopt.step(local)  # copied into the buffer
                    elif t % 3 == 2:
                        dopt.synchronize(local)  # Horovod's synchronize(), then a step that does not reduce again
                        dopt.step()
                    else:
                        for v, g in zip(dopt.grads, local):
                            v[...] = g  # written into the buffer: no copy
                        dopt.step()
                    ref.step(mean)
                    assert dopt.skipped_steps == ref.skipped_steps, (name, options, t)
                    if "clip_norm" in options:
                        if size == 2:
                            assert np.array_equal(dopt.last_grad_norm, ref.last_grad_norm, equal_nan=True), \
                                (name, options, t)
                        else:
                            assert np.isclose(dopt.last_grad_norm, ref.last_grad_norm, rtol=1e-5, equal_nan=True)
                for p, q in zip(params, ref_params):
                    if size == 2:
                        # (g0 + g1) * 0.5 is exact: the same bits as the reference.
                        assert np.array_equal(p, q), (level, name, dtype, options, np.max(np.abs(p - q)))
                    else:
                        tol = 1e-5 if dtype == np.float32 else 1e-12
                        np.testing.assert_allclose(p, q, rtol=tol, atol=tol, err_msg=f"{level} {name} {options}")
                if "nonfinite" in options:
                    assert dopt.skipped_steps == 1
                # One reduction per step; the rest is the wrapped optimizer's.
                assert dopt.comm_calls == STEPS and dopt.comm_seconds > 0
                assert dopt.state_dict()["group_state"] == ref.state_dict()["group_state"]
                assert dopt.param_groups is dopt.optimizer.param_groups and dopt.param_groups[0]["lr"] == 0.01
                assert dopt.in_sync()
                key = f"{level}_{name}_{np.dtype(dtype).name}_{oi}"
                for i, p in enumerate(params):
                    results[f"{key}_{i}"] = p
                dopt.detach()
                checked += 1

results["checked"] = np.array(checked)
np.savez(f"{out}/optimizer_steps_rank{rank}.npz", **results)

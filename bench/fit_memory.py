"""Peak memory growth of one ``fit()``, in a fresh process, as a multiple of X's size.

The parent saves X and y as ``.npy`` files (a scipy.sparse X with ``scipy.sparse.save_npz``,
as ``.npz``: its size is then that of its data, indices and indptr); :func:`peak_growth` runs
this file as a child process, which loads X into memory (an ordinary array, not a memmap),
fits the estimator once on its first rows (so that the thread pools, BLAS buffers and lazily
imported modules exist before the baseline), takes the baseline, and fits again on all of X.
Two readings:

* ``anon``: the peak of RssAnon over the fit, sampled every 5 ms from a thread (the
  project's way, ``tests/anon_memory.py``): what the fit allocates; file pages do not count;
* ``hwm``: VmHWM, the kernel's exact peak of the whole resident set, reset (write 5 to
  /proc/self/clear_refs) when the baseline is taken: no sampling gap, but pages of files
  touched for the first time count as well.

Linux only (``/proc/self/status``); elsewhere the child reports nothing and the parent says so.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def fitted_bytes(est: object) -> int:
    """Bytes of the fitted arrays (``coef_``, ``coefs_``, ...): the model's parameters."""
    import numpy as np

    total = 0
    for name, v in vars(est).items():
        if not name.endswith("_"):
            continue
        for a in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                total += a.nbytes
    return total


def load_x(xpath: str) -> tuple[object, int]:
    """X in memory and its bytes: a ``.npy`` array, or a ``.npz`` scipy.sparse matrix as CSR
    (data, indices and indptr)."""
    import numpy as np

    if xpath.endswith(".npz"):
        import scipy.sparse

        X = scipy.sparse.load_npz(xpath).tocsr()
        return X, X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    X = np.load(xpath)  # in memory
    return X, X.nbytes


def child(xpath: str, ypath: str, estimator: str, params_json: str, threads: str) -> dict:
    import numpy as np

    import fastgd

    sys.path.insert(0, str(HERE.parent / "tests"))
    from anon_memory import PeakAnon

    warnings.filterwarnings("ignore", message=".*reached max_epochs")
    fastgd.set_num_threads(int(threads))
    params = json.loads(params_json)
    y = np.load(ypath)
    X, x_bytes = load_x(xpath)
    cls = getattr(fastgd, estimator)
    warm = max(4 * params.get("batch_size", 256), 4096)
    cls(**(params | {"max_epochs": 1})).fit(X[:warm], y[:warm])
    est = cls(**params)
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        hwm_reset = True
    except OSError:  # some sandboxes forbid it: then VmHWM may be an earlier peak
        hwm_reset = False
    rss_base = status_kb("VmRSS")
    with PeakAnon() as m:
        est.fit(X, y)
    hwm = status_kb("VmHWM")
    return {"x_bytes": x_bytes, "anon_growth_bytes": (m.peak_kb - m.base_kb) * 1024,
            "hwm_growth_bytes": (hwm - rss_base) * 1024 if hwm_reset else float("nan"),
            "fitted_bytes": fitted_bytes(est),
            "n_iter": est.n_iter_, "simd_level": fastgd.simd_level(), "threads": fastgd.get_num_threads()}


def peak_growth(xpath: Path, ypath: Path, estimator: str, params: dict, widths: list[int], threads: int) -> dict | None:
    """The child's readings for ``fastgd.<estimator>(**params).fit(X, y)``, and the target's
    allowance: 5% of X, plus the model (4 x its parameters: the parameters, their gradients
    and Adam's two moments) and O(batch) buffers (8 float64 arrays of batch x the sum of
    ``widths``, the layer widths a batch passes through). None when /proc is missing."""
    if not Path("/proc/self/status").exists():
        print("note: no /proc/self/status: peak memory growth is not measured here", flush=True)
        return None
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); import fit_memory; "
            "print(json.dumps(fit_memory.child(*sys.argv[2:])))")
    done = subprocess.run([sys.executable, "-c", code, str(HERE), str(xpath), str(ypath), estimator,
                           json.dumps(params), str(threads)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"note: the memory child for {estimator} failed:\n{done.stderr.strip()[-800:]}", flush=True)
        return None
    r = json.loads(done.stdout.strip().splitlines()[-1])
    batch_bytes = 8 * params.get("batch_size", 256) * sum(widths) * 8
    r["allowance_bytes"] = 0.05 * r["x_bytes"] + 4 * r["fitted_bytes"] + batch_bytes
    r["estimator"], r["params"] = estimator, params
    for k in ("anon_growth", "hwm_growth", "allowance"):
        r[k + "_of_x"] = r[k + "_bytes"] / r["x_bytes"]
    return r


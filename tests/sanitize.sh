#!/usr/bin/env bash
# Build fastgd with AddressSanitizer + UndefinedBehaviorSanitizer into a venv of its own and
# run the kernel tests under it. Any out-of-bounds access, use after free or undefined
# behaviour (overflowing signed arithmetic, misaligned loads, bad shifts, ...) stops the run.
#
#   tests/sanitize.sh                       # the default kernel tests
#   tests/sanitize.sh tests/test_clipping.py -k norm   # any pytest arguments instead
#
# Environment: PYTHON (default python3), SANITIZE_VENV (default build/sanitize-venv), and
# SANITIZE_REUSE=1 to keep an existing venv and only rebuild the extension.
# Needs GCC or Clang with the sanitizer runtimes (Debian/Ubuntu: libasan, libubsan come with g++).
# The build goes to build/sanitize, so the normal build directory is left alone.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
venv=${SANITIZE_VENV:-$root/build/sanitize-venv}
cxx=${CXX:-g++}

flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

if [[ "${SANITIZE_REUSE:-0}" != 1 || ! -x "$venv/bin/python" ]]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q numpy pytest hypothesis threadpoolctl scikit-build-core pybind11
fi

"$venv/bin/pip" install -q --no-build-isolation --force-reinstall --no-deps . \
  --config-settings=build-dir=build/sanitize \
  --config-settings=cmake.build-type=RelWithDebInfo \
  "--config-settings=cmake.define.CMAKE_CXX_FLAGS=$flags" \
  "--config-settings=cmake.define.CMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined" \
  "--config-settings=cmake.define.CMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined"

if [[ $# -eq 0 ]]; then
  # The kernels and their bindings. Not test_leaks.py: the sanitizer's own bookkeeping
  # (quarantined frees, shadow memory) makes the resident set grow by design.
  set -- tests/test_update_rules.py tests/test_kernel_properties.py tests/test_clipping.py \
    tests/test_bad_input.py tests/test_activations.py tests/test_losses.py \
    tests/test_linear_objective.py tests/test_step_plan.py tests/test_threads.py \
    tests/test_state_dict.py tests/test_optimizer_options.py
fi

# Python is not built with the sanitizer: the runtime must be loaded first. Python keeps
# objects alive until exit by design, so leak detection is off.
asan=$("$cxx" -print-file-name=libasan.so)
export LD_PRELOAD="$asan${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"

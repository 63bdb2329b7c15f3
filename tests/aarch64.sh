#!/usr/bin/env bash
# The NEON level of the kernels, on an x86-64 Linux machine: cross-compile tests/conformance
# for AArch64 and run it under user-mode emulation (qemu-aarch64), where it checks the NEON
# level against the scalar level, bit for bit, over every update rule, option, dtype, size
# and clipping mode (tests/conformance/conformance.cpp says what exactly).
#
#   tests/aarch64.sh
#
# Needs aarch64-linux-gnu-g++, qemu-aarch64, cmake and ninja; on Debian or Ubuntu, run as
# root, it installs the missing ones (g++-aarch64-linux-gnu, qemu-user, cmake, ninja-build).
# Anything still missing is an error, never a skipped run. The build goes to
# build/tests/conformance-aarch64; a second run rebuilds only what changed. Run time on
# 2 cores: under a minute to build, a few minutes to run (emulation is some 10x slower).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=build/tests/conformance-aarch64
sysroot=/usr/aarch64-linux-gnu
start=$SECONDS

# command  Debian package
tools=(
  "aarch64-linux-gnu-g++ g++-aarch64-linux-gnu"
  "qemu-aarch64 qemu-user"
  "cmake cmake"
  "ninja ninja-build"
)
missing=()
for entry in "${tools[@]}"; do
  read -r cmd package <<<"$entry"
  command -v "$cmd" >/dev/null || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  for entry in "${tools[@]}"; do
    read -r cmd package <<<"$entry"
    if ! command -v "$cmd" >/dev/null; then
      echo "error: $cmd not found (Debian/Ubuntu: apt-get install $package, as root)" >&2
      exit 1
    fi
  done
fi
if [ ! -d "$sysroot/lib" ]; then
  echo "error: no AArch64 C++ runtime in $sysroot (Debian/Ubuntu: apt-get install g++-aarch64-linux-gnu)" >&2
  exit 1
fi

cmake -S tests/conformance -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$root/tests/conformance/aarch64-linux-gnu.cmake" >/dev/null
cmake --build "$build"
built=$SECONDS

# The level named on the command line: an error, not a pass, if the build lacks it.
qemu-aarch64 -L "$sysroot" "$build/conformance" neon
echo "tests/aarch64.sh: passed (build $((built - start)) s, run $((SECONDS - built)) s under qemu-aarch64)"

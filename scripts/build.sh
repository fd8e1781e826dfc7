#!/usr/bin/env bash
# Configures and builds lowbit in ./build (or $LOWBIT_BUILD_DIR). Extra arguments go to cmake,
# e.g. -DCMAKE_PREFIX_PATH=... for a CUDA LibTorch 2.x.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${LOWBIT_BUILD_DIR:-build}"
jobs="${LOWBIT_JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" --parallel "$jobs"

#!/usr/bin/env bash
# Builds lowbit with its tests and runs the whole suite through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh -DLOWBIT_BUILD_TESTS=ON
cd "${LOWBIT_BUILD_DIR:-build}"
ctest --output-on-failure --parallel "${LOWBIT_JOBS:-$(nproc)}"

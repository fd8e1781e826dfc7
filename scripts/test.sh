#!/usr/bin/env bash
# Checks the C++ files against .clang-format, builds lowbit with its tests and runs the whole
# suite through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/check-format.sh
bash scripts/build.sh -DLOWBIT_BUILD_TESTS=ON
cd "${LOWBIT_BUILD_DIR:-build}"
ctest --output-on-failure --parallel "${LOWBIT_JOBS:-$(nproc)}"

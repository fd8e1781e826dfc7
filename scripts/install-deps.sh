#!/usr/bin/env bash
# Installs every Debian package lowbit needs to build, test and run its quick-start.
# Idempotent: apt-get skips what is already there.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git
  clang-format            # the house style (.clang-format), checked by scripts/test.sh
  libtorch-dev            # LibTorch 1.13.1 (CPU); a CUDA LibTorch 2.x is found via CMAKE_PREFIX_PATH instead
  libboost-dev libboost-filesystem-dev   # Boost.DLL (header-only) and the filesystem it builds on
  nlohmann-json3-dev libsqlite3-dev sqlite3 libfmt-dev catch2 libcli11-dev zlib1g-dev
  dataset-fashion-mnist   # the embedded default data set, under /usr/share/datasets/fashion-mnist
  libstb-dev              # stb_image: JPEG/PNG decoding for image-folder data
  chromium                # headless browser the report's page test loads the HTML in
  python3-torch bc        # the export test's torch.load; bench/'s Python reference and script
  slurm-wlm munge         # the test that runs a sweep as a Slurm job array on a one-node cluster
)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}"

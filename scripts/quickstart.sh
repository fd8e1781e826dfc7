#!/usr/bin/env bash
# Everything from a fresh Debian 12 machine to the quick-start result table: installs the
# dependencies, builds, and runs experiments/quickstart.json (ResNet-20 on Fashion-MNIST: the
# full-precision model, then DoReFa 2W2A fine-tuned from it, 2 trials each; about 4.5 minutes
# on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/bin/lowbit run experiments/quickstart.json --db results/lowbit.db
./build/bin/lowbit table --db results/lowbit.db --experiment quickstart --format markdown \
  --output results/local/quickstart.md

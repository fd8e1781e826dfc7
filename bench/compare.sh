#!/usr/bin/env bash
# Runs lowbit's step benchmark and the PyTorch Python reference (bench/reference.py) on the same
# settings, one after the other, and prints img/s side by side with the ratios.
#   bench/compare.sh [--threads N] [--batch B] [--steps S]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 batch=128 steps=20
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    *) echo "usage: $0 [--threads N] [--batch B] [--steps S]" >&2; exit 2 ;;
  esac
done
lowbit="${LOWBIT_BIN:-build/bin/lowbit}"
python=/usr/bin/python3  # Debian's python3-torch, the same LibTorch 1.13 as lowbit's

echo "ResNet-20, batch $batch, 3x32x32, $threads threads, median of $steps steps"
native=$("$lowbit" bench --device cpu --threads "$threads" --batch "$batch" --steps "$steps" \
  --precision 2W2A)
echo "$native"
lowbit_fp=$(awk '$1 == "32W32A" {print $3}' <<<"$native")
lowbit_q=$(awk '$1 == "2W2A" {print $3}' <<<"$native")
python_fp=$("$python" bench/reference.py --setting fp --threads "$threads" --batch "$batch" --steps "$steps" | awk '{print $3}')
python_q=$("$python" bench/reference.py --setting 2w2a --threads "$threads" --batch "$batch" --steps "$steps" | awk '{print $3}')

printf '\n%-10s %12s %12s %8s\n' setting "lowbit img/s" "python img/s" ratio
printf '%-10s %12s %12s %8.2f\n' FP "$lowbit_fp" "$python_fp" "$(echo "$lowbit_fp / $python_fp" | bc -l)"
printf '%-10s %12s %12s %8.2f\n' 2W2A "$lowbit_q" "$python_q" "$(echo "$lowbit_q / $python_q" | bc -l)"
printf 'lowbit quantized/FP step time: %.2f\n' "$(echo "$lowbit_fp / $lowbit_q" | bc -l)"

#!/usr/bin/env bash
# Runs lowbit's step benchmark and the PyTorch Python reference (bench/reference.py) on the same
# settings (full precision, DoReFa 2W2A, 2W2A with joint KD), one after the other, and prints
# img/s side by side with the ratios.
#   bench/compare.sh [--threads N] [--batch B] [--steps S] [--channels-last]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 batch=128 steps=20 layout=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --channels-last) layout=(--channels-last); shift ;;
    *) echo "usage: $0 [--threads N] [--batch B] [--steps S] [--channels-last]" >&2; exit 2 ;;
  esac
done
lowbit="${LOWBIT_BIN:-build/bin/lowbit}"
python=/usr/bin/python3  # Debian's python3-torch, the same LibTorch 1.13 as lowbit's

echo "ResNet-20, batch $batch, 3x32x32, $threads threads, median of $steps steps ${layout[*]}"
native=$("$lowbit" bench --device cpu --threads "$threads" --batch "$batch" --steps "$steps" \
  --precision 2W2A --kd "${layout[@]}")
echo "$native"
column() { awk -v setting="$1" '$1 == setting {print $3}' <<<"$native"; }
reference() {
  "$python" bench/reference.py --setting "$1" --threads "$threads" --batch "$batch" \
    --steps "$steps" "${layout[@]}" | awk '{print $3}'
}
lowbit_fp=$(column 32W32A) lowbit_q=$(column 2W2A) lowbit_kd=$(column 2W2A+KD)
python_fp=$(reference fp) python_q=$(reference 2w2a) python_kd=$(reference kd)

printf '\n%-10s %12s %12s %8s\n' setting "lowbit img/s" "python img/s" ratio
row() { printf '%-10s %12s %12s %8.2f\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"; }
row FP "$lowbit_fp" "$python_fp"
row 2W2A "$lowbit_q" "$python_q"
row 2W2A+KD "$lowbit_kd" "$python_kd"
printf 'lowbit quantized/FP step time: %.2f\n' "$(echo "$lowbit_fp / $lowbit_q" | bc -l)"

#!/bin/sh
# The committed quick-start table is what the code produces: `lowbit verify` re-trains the first
# stored trial of results/quickstart.db (the 32W32A trial 0, from scratch) in a scratch database
# and compares it with its record. Skipped (CTest's SKIP_REGULAR_EXPRESSION) while that database
# is not committed, or without the Fashion-MNIST files the experiment reads.
#
#   verify_quickstart.sh <lowbit binary> <database>
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 <lowbit binary> <database>" >&2
  exit 2
fi
lowbit=$1
db=$2
if [ ! -f "$db" ]; then
  echo "LOWBIT-SKIPPED: no $db (the committed quick-start database)"
  exit 0
fi
data=/usr/share/datasets/fashion-mnist
if [ ! -d "$data" ]; then
  echo "LOWBIT-SKIPPED: $data is absent (apt install dataset-fashion-mnist)"
  exit 0
fi
exec "$lowbit" verify quickstart --db "$db" --trials 1

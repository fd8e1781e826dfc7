#!/bin/bash
# The paper's tables at one scale (experiments/paper/*.json, profile cpu by default) into one
# database, table by table: each table's markdown is written as soon as it is complete, and a
# killed campaign resumes where it stopped when this script is run again (finished trials are
# skipped, the trial in flight continues from its last epoch). --reuse records a trial that an
# earlier table of the database already finished under the same run hash (each 32W32A trial is
# pretrained once, identical baselines are shared) instead of training it again.
#
#   scripts/paper-campaign.sh [experiments/paper/table09_sp_kd_resnet.json ...]
#
# Environment: LOWBIT (build/bin/lowbit), DB (results/paper-cpu.db), PROFILE (cpu), JOBS (2),
# THREADS (1 per job: on 2 cores two one-thread jobs train more trials per hour than one job
# with two threads), OUT (results/paper).
set -euo pipefail
cd "$(dirname "$0")/.."
lowbit=${LOWBIT:-build/bin/lowbit}
db=${DB:-results/paper-cpu.db}
profile=${PROFILE:-cpu}
jobs=${JOBS:-2}
threads=${THREADS:-1}
out=${OUT:-results/paper}
mkdir -p "$out"
if [ $# -eq 0 ]; then
  # The tables whose rows later tables share come first.
  set -- experiments/paper/table09_sp_kd_resnet.json experiments/paper/table01_ts_pp.json \
    experiments/paper/table08_kd_guidance.json experiments/paper/table04_kd_resnet.json \
    experiments/paper/table11_ts_pp_kd_resnet50.json experiments/paper/table10_sp_kd_preresnet.json \
    experiments/paper/table07_kd_fixed_teacher.json experiments/paper/table05_kd_preresnet.json \
    experiments/paper/table06_kd_scratch.json experiments/paper/table02_sp_quantizers.json \
    experiments/paper/table03_sp_fragments.json experiments/paper/table12_alexnet_cifar100_sp_kd.json \
    experiments/paper/table13_alexnet_ts_pp_kd.json
fi
for file in "$@"; do
  table=$(basename "$file" .json)
  start=$(date +%s)
  "$lowbit" run "$file" --profile "$profile" --db "$db" --reuse --jobs "$jobs" --threads "$threads"
  # One line per invocation: a table resumed over several sessions has several.
  printf '%s\t%s\t%s\t%s\t%s\n' "$table" "$profile" "$(date -u -d "@$start" +%FT%TZ)" \
    "$(($(date +%s) - start))" "jobs=$jobs threads=$threads $(nproc) cores" >>"$out/wall-times.tsv"
  "$lowbit" table --db "$db" --experiment "$table-$profile" --strategy-columns --vs-baseline \
    --show-cost -o "$out/${table%%_*}.md"
done

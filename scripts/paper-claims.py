#!/usr/bin/env python3
"""Writes results/paper/README.md: every claim of the paper that the CPU scale can test, with
the measured paired difference, its 95% interval and a verdict, from the campaign's database.

The numbers come from `lowbit table --format csv` (`--vs-baseline`, or `--vs METHOD` for a claim
between two methods), so they are the committed tables' numbers; this script only picks cells and
applies the verdict rule. Standard library only.

  scripts/paper-claims.py [--lowbit build/bin/lowbit] [--db results/paper-cpu.db]
                          [--profile cpu] [--out results/paper/README.md]
"""
import argparse
import csv
import functools
import io
import os
import sqlite3
import subprocess
import sys
from collections import namedtuple

# One claim: the paper's table, the claim, and the paired difference that tests it:
# `treated` minus `reference` (None: the baseline of the same configuration) on `model` at
# `precision`, in the experiment of table `table`. A claim holds when the difference is > 0.
Claim = namedtuple("Claim", "table claim model precision treated reference")

CLAIMS = [
    Claim(1, "TS improves on the baseline", "resnet20", "2W2A", "dorefa+TS", None),
    Claim(1, "PP improves on the baseline", "resnet20", "2W2A", "dorefa+PP", None),
    Claim(1, "TS+PP improves on the baseline", "resnet20", "2W2A", "dorefa+TS+PP", None),
    Claim(1, "TS+PP beats TS alone", "resnet20", "2W2A", "dorefa+TS+PP", "dorefa+TS"),
    Claim(1, "TS+PP beats PP alone", "resnet20", "2W2A", "dorefa+TS+PP", "dorefa+PP"),
    Claim(2, "SP improves DoReFa", "resnet20", "2W2A", "dorefa+SP", None),
    Claim(2, "SP improves LQ-Net", "resnet20", "2W2A", "lqnet+SP", None),
    Claim(2, "SP improves Bi-Real", "resnet20", "1W1A", "bireal+SP", None),
    Claim(2, "SP improves Group-Net", "resnet20", "1W1A", "groupnet+SP", None),
    Claim(3, "SP over blocks (W/A) improves Group-Net", "resnet20", "1W1A",
          "groupnet+SP(block,W/A)", None),
    Claim(3, "block W/A beats block", "resnet20", "1W1A", "groupnet+SP(block,W/A)",
          "groupnet+SP(block)"),
    Claim(3, "block W/A beats layer W/A", "resnet20", "1W1A", "groupnet+SP(block,W/A)",
          "groupnet+SP(layer,W/A)"),
    Claim(3, "layer W/A beats layer", "resnet20", "1W1A", "groupnet+SP(layer,W/A)",
          "groupnet+SP(layer)"),
    Claim(4, "joint KD (same-depth teacher) improves a ResNet", "resnet20", "2W2A", "dorefa+KD",
          None),
    Claim(4, "joint KD (deeper teacher) improves a ResNet", "resnet20", "2W2A",
          "dorefa+KD(ResNet-32)", None),
    Claim(4, "a deeper teacher beats a same-depth one", "resnet20", "2W2A", "dorefa+KD(ResNet-32)",
          "dorefa+KD"),
    Claim(5, "joint KD (same-depth teacher) improves a PreResNet", "preresnet20", "2W2A",
          "dorefa+KD", None),
    Claim(5, "joint KD (deeper teacher) improves a PreResNet", "preresnet20", "2W2A",
          "dorefa+KD(PreResNet-32)", None),
    Claim(5, "a deeper teacher beats a same-depth one", "preresnet20", "2W2A",
          "dorefa+KD(PreResNet-32)", "dorefa+KD"),
    Claim(6, "joint KD improves a student trained from scratch", "preresnet20", "2W2A",
          "dorefa+KD(scratch)", None),
    Claim(7, "joint KD improves on the baseline", "preresnet20", "2W2A", "dorefa+KD", None),
    Claim(7, "a fixed pretrained teacher improves on the baseline", "preresnet20", "2W2A",
          "dorefa+KD(fixed)", None),
    Claim(7, "joint KD beats a fixed teacher", "preresnet20", "2W2A", "dorefa+KD",
          "dorefa+KD(fixed)"),
    Claim(8, "posterior guidance alone improves on the baseline", "resnet20", "2W2A",
          "dorefa+KD(posterior)", None),
    Claim(8, "attention guidance alone improves on the baseline", "resnet20", "2W2A",
          "dorefa+KD(attention)", None),
    Claim(8, "posterior + attention beats posterior alone", "resnet20", "2W2A", "dorefa+KD",
          "dorefa+KD(posterior)"),
    Claim(8, "posterior + attention beats attention alone", "resnet20", "2W2A", "dorefa+KD",
          "dorefa+KD(attention)"),
    Claim(9, "SP improves a ResNet", "resnet20", "2W2A", "dorefa+SP", None),
    Claim(9, "KD improves a ResNet", "resnet20", "2W2A", "dorefa+KD", None),
    Claim(9, "SP+KD improves a ResNet", "resnet20", "2W2A", "dorefa+SP+KD", None),
    Claim(9, "SP+KD beats SP", "resnet20", "2W2A", "dorefa+SP+KD", "dorefa+SP"),
    Claim(9, "SP+KD beats KD", "resnet20", "2W2A", "dorefa+SP+KD", "dorefa+KD"),
    Claim(10, "SP improves a PreResNet", "preresnet20", "2W2A", "dorefa+SP", None),
    Claim(10, "KD improves a PreResNet", "preresnet20", "2W2A", "dorefa+KD", None),
    Claim(10, "SP+KD improves a PreResNet", "preresnet20", "2W2A", "dorefa+SP+KD", None),
    Claim(10, "SP+KD beats SP", "preresnet20", "2W2A", "dorefa+SP+KD", "dorefa+SP"),
    Claim(10, "SP+KD beats KD", "preresnet20", "2W2A", "dorefa+SP+KD", "dorefa+KD"),
    Claim(11, "TS+PP+KD improves on the baseline", "resnet20", "2W2A", "dorefa+TS+PP+KD", None),
    Claim(11, "TS+PP+KD improves on the baseline with first and last layers quantized (*)",
          "resnet20", "2W2A", "dorefa+TS+PP+KD*", None),
    Claim(12, "SP improves AlexNet*", "alexnet_bn_cifar_small", "2W2A", "dorefa+SP", None),
    Claim(12, "KD improves AlexNet*", "alexnet_bn_cifar_small", "2W2A", "dorefa+KD", None),
    Claim(12, "SP+KD improves AlexNet*", "alexnet_bn_cifar_small", "2W2A", "dorefa+SP+KD", None),
    Claim(12, "SP+KD beats SP and KD alone (vs SP)", "alexnet_bn_cifar_small", "2W2A",
          "dorefa+SP+KD", "dorefa+SP"),
    Claim(12, "SP+KD beats SP and KD alone (vs KD)", "alexnet_bn_cifar_small", "2W2A",
          "dorefa+SP+KD", "dorefa+KD"),
    Claim(13, "TS improves AlexNet*", "alexnet_bn_cifar_small", "2W2A", "dorefa+TS", None),
    Claim(13, "PP improves AlexNet*", "alexnet_bn_cifar_small", "2W2A", "dorefa+PP", None),
    Claim(13, "TS+PP improves AlexNet*", "alexnet_bn_cifar_small", "2W2A", "dorefa+TS+PP", None),
    Claim(13, "KD improves AlexNet*", "alexnet_bn_cifar_small", "2W2A", "dorefa+KD", None),
]

TABLES = {
    1: "table01_ts_pp", 2: "table02_sp_quantizers", 3: "table03_sp_fragments",
    4: "table04_kd_resnet", 5: "table05_kd_preresnet", 6: "table06_kd_scratch",
    7: "table07_kd_fixed_teacher", 8: "table08_kd_guidance", 9: "table09_sp_kd_resnet",
    10: "table10_sp_kd_preresnet", 11: "table11_ts_pp_kd_resnet50",
    12: "table12_alexnet_cifar100_sp_kd", 13: "table13_alexnet_ts_pp_kd",
}


@functools.lru_cache(maxsize=None)
def table_csv(lowbit, db, experiment, reference):
    """The Top-1 rows of `lowbit table --format csv` for one experiment, by precision (one call
    per experiment and reference, however many claims read it)."""
    command = [lowbit, "table", "--db", db, "--experiment", experiment, "--format", "csv"]
    command += ["--vs", reference] if reference else ["--vs-baseline"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return None
    rows = {}
    for row in csv.DictReader(io.StringIO(done.stdout)):
        if row["metric"] == "Top-1":
            rows[row["precision"]] = row
    return rows


def verdict(n, low, high):
    if n < 2:
        return "not run" if n == 0 else "inconclusive (1 trial)"
    if low == 0 and high == 0:
        # Every paired trial repeated its reference to the last bit: the treatment did nothing.
        return "not tested: identical trials"
    if low > 0:
        return "reproduced"
    if high < 0:
        return "not reproduced (opposite)"
    return "inconclusive"


def measure(args, claim):
    experiment = f"{TABLES[claim.table]}-{args.profile}"
    rows = table_csv(args.lowbit, args.db, experiment, claim.reference)
    column = f"{claim.model} {claim.treated}"
    row = (rows or {}).get(claim.precision)
    if row is None or not row.get(column + " diff"):
        return None
    n = int(row[column + " n"])
    diff = float(row[column + " diff"])
    low = float(row[column + " diff low"] or diff)
    high = float(row[column + " diff high"] or diff)
    return n, diff, low, high


def wall_times(args):
    """Seconds of training recorded per experiment (reused trials not counted twice: a trial
    counts in the first experiment that recorded it) and the campaign's own log."""
    path = os.path.join(os.path.dirname(args.out), "wall-times.tsv")
    logged = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                table, profile, start, seconds, how = line.rstrip("\n").split("\t")
                logged.setdefault(table, []).append((start, int(seconds), how))
    trained = {}
    if os.path.exists(args.db):
        db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
        seen = set()
        for name, hash_, index, seconds in db.execute(
                "SELECT e.name, r.hash, t.trial_index, t.wall_seconds FROM trials t "
                "JOIN runs r ON r.id = t.run_id JOIN experiments e ON e.id = r.experiment_id "
                "WHERE t.status = 'finished' ORDER BY t.id"):
            key = (hash_, index)
            trained.setdefault(name, [0, 0, 0.0])
            trained[name][0] += 1
            if key not in seen:
                seen.add(key)
                trained[name][1] += 1
                trained[name][2] += seconds
    return logged, trained


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lowbit", default="build/bin/lowbit")
    parser.add_argument("--db", default="results/paper-cpu.db")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--out", default="results/paper/README.md")
    parser.add_argument("--header", default="results/paper/README.head.md",
                        help="hand-written text put above the generated part")
    args = parser.parse_args()

    lines = []
    if os.path.exists(args.header):
        with open(args.header) as f:
            lines.append(f.read().rstrip("\n"))
        lines.append("")
    lines.append("## Claims")
    lines.append("")
    lines.append("Difference = treated minus reference in final test top-1 (%), paired by trial, "
                 "with its two-sided 95% Student-t interval. Verdict: *reproduced* when the "
                 "interval lies above 0, *not reproduced (opposite)* when it lies below 0, "
                 "*inconclusive* when it contains 0, *not run* when the campaign has not "
                 "reached the table yet.")
    lines.append("")
    lines.append("| Table | Claim | Model, precision | Treated − reference | n | Difference [95% CI] "
                 "| Verdict |")
    lines.append("| ---: | --- | --- | --- | ---: | --- | --- |")
    counts = {}
    for claim in CLAIMS:
        measured = measure(args, claim)
        reference = claim.reference or "baseline"
        if measured is None:
            n, text, word = 0, "–", "not run"
        else:
            n, diff, low, high = measured
            text = (f"{diff:+.2f} [{low:+.2f}, {high:+.2f}]" if n >= 2 else f"{diff:+.2f}")
            word = verdict(n, low, high)
        counts[word] = counts.get(word, 0) + 1
        lines.append(f"| {claim.table} | {claim.claim} | {claim.model} {claim.precision} | "
                     f"{claim.treated} − {reference} | {n} | {text} | {word} |")
    lines.append("")
    lines.append("Tally: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".")
    lines.append("")

    logged, trained = wall_times(args)
    lines.append("## Cost per table")
    lines.append("")
    lines.append("Trials: finished trials in the table's experiment; trained here: those not "
                 "already recorded by an earlier table (`--reuse` copies the others); training "
                 "time: the sum of those trials' wall times (two jobs ran at once, so the "
                 "campaign's clock time is about half the sum). Invocations: each "
                 "`scripts/paper-campaign.sh` run of the table, with its start and clock time.")
    lines.append("")
    lines.append("| Table | Trials | Trained here | Training time | Invocations (start, seconds) |")
    lines.append("| --- | ---: | ---: | ---: | --- |")
    total = 0.0
    for number, table in TABLES.items():
        name = f"{table}-{args.profile}"
        count, fresh, seconds = trained.get(name, [0, 0, 0.0])
        total += seconds
        runs = "; ".join(f"{start}, {sec} s ({how})" for start, sec, how in logged.get(table, []))
        lines.append(f"| [{number}](table{number:02d}.md) | {count} | {fresh} | "
                     f"{seconds / 60:.1f} min | {runs or '–'} |")
    lines.append("")
    lines.append(f"Training time of all trials: {total / 3600:.2f} h of one core each "
                 f"(two at once: about {total / 7200:.2f} h of clock time).")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())

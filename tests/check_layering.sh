#!/bin/sh
# The core library's folders are layers: a file may include its own folder and the layers below
# it, never a layer above or a peer beside it. That keeps include cycles out (trainer.h once
# included experiment.h, which included training/) and lets a layer be read without the ones above.
#
#   check_layering.sh <source root> <bottom layer> ... <top layer>
#
# Peers within one layer are joined by commas ("data,layers"). Reads the
# `#include <lowbit/<folder>/...>` and `#include "<folder>/..."` lines of every file under
# harness/include/lowbit/<folder>/ and harness/src/<folder>/. What is not a harness folder (the
# sdk, the models, system headers) sits below every layer. A harness folder in no layer is an
# error too, so a new folder must be given its place. Prints each offence; exits 1 if any.
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 <source root> <bottom layer> ... <top layer> (peers joined by commas)" >&2
  exit 2
fi
root=$1
shift
layers="$*"

# The rank of a folder (1 = bottom), or nothing when no layer holds it.
rank_of() {
  rank=0
  for layer in $layers; do
    rank=$((rank + 1))
    for folder in $(echo "$layer" | tr ',' ' '); do
      if [ "$folder" = "$1" ]; then
        echo "$rank"
        return
      fi
    done
  done
}

is_harness_folder() {
  [ -d "$root/harness/include/lowbit/$1" ] || [ -d "$root/harness/src/$1" ]
}

report=$(mktemp)
trap 'rm -f "$report"' EXIT
files=0
for base in "$root/harness/include/lowbit" "$root/harness/src"; do
  for dir in "$base"/*/; do
    [ -d "$dir" ] || continue
    folder=$(basename "$dir")
    own=$(rank_of "$folder")
    if [ -z "$own" ]; then
      echo "${dir#"$root"/}: the folder $folder is in no layer (bottom up: $layers)" >>"$report"
      continue
    fi
    for file in $(find "$dir" -type f \( -name '*.h' -o -name '*.cpp' \) | sort); do
      files=$((files + 1))
      # "12:#include <lowbit/runner/sweep.h>" becomes "12 runner".
      grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](lowbit/)?[a-z_]+/' "$file" |
        sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](lowbit\/)?([a-z_]+)\/.*/\1 \3/' |
        while read -r line target; do
          [ "$target" = "$folder" ] && continue
          is_harness_folder "$target" || continue
          theirs=$(rank_of "$target")
          if [ -z "$theirs" ] || [ "$theirs" -ge "$own" ]; then
            echo "${file#"$root"/}:$line: $folder includes $target, which is not below it" \
                 "(bottom up: $layers)"
          fi
        done >>"$report"
    done
  done
done

if [ -s "$report" ]; then
  cat "$report"
  exit 1
fi
echo "layering ok: $files files (bottom up: $layers)"

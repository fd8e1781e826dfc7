#!/usr/bin/env bash
# Fails, listing the files, when a C++ file of the tree is not as .clang-format says (clang-format
# 14, Debian 12's). Fix with: clang-format -i <file>...
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard '*.cpp' '*.h' '*.cu')
unformatted=()
for file in "${files[@]}"; do
  [[ -f "$file" ]] || continue
  if ! clang-format --dry-run --Werror "$file" > /dev/null 2>&1; then unformatted+=("$file"); fi
done
if (( ${#unformatted[@]} > 0 )); then
  echo "not formatted as .clang-format says (clang-format -i <file> fixes them):" >&2
  printf '  %s\n' "${unformatted[@]}" >&2
  exit 1
fi
echo "format: ${#files[@]} C++ files as .clang-format says"

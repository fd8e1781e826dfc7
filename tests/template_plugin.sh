#!/usr/bin/env bash
# The out-of-tree plugin workflow of plugins/template/README.md, end to end: install lowbit to a
# temporary prefix, build the template and its test against the installed package, run the test,
# load the plugin with --plugin-dir, and train a tiny run with it.
# Usage: template_plugin.sh <lowbit source dir> <lowbit build dir> [compiler launcher]
set -euo pipefail
source_dir=$1
build_dir=$2
launcher=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"

configure=(cmake -S "$source_dir/plugins/template" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix")
if [[ -n "$launcher" ]]; then configure+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher"); fi
"${configure[@]}" > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" --parallel "$(nproc)" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
test -f "$work/build/liblowbit_pact.so"
# The template's own test, built by lowbit_add_plugin_test from the installed package.
(cd "$work/build" && ctest --output-on-failure) > "$work/test.log" || { cat "$work/test.log"; exit 1; }
grep -E "100% tests passed" "$work/test.log"

lowbit="$work/prefix/bin/lowbit"
listing=$("$lowbit" --plugin-dir "$work/build" plugins)
echo "$listing"
grep -E "^quantizer +pact " <<< "$listing"
grep -F "$work/build/liblowbit_pact.so" <<< "$listing"
# The installed lowbit also finds the shipped plugins beside it.
grep -E "^quantizer +dorefa " <<< "$listing"

cat > "$work/tiny.json" <<'JSON'
{
  "name": "template_plugin",
  "data": {"name": "synthetic", "train": 64, "test": 32, "classes": 4, "channels": 1,
           "image_size": 8},
  "models": ["resnet20"],
  "quantizers": [{"name": "pact", "options": {"alpha_init": 6.0}}],
  "precisions": ["2W2A"],
  "threads": 1,
  "training": {"epochs": 1, "batch_size": 32, "max_steps_per_epoch": 2}
}
JSON
output=$("$lowbit" --plugin-dir "$work/build" run "$work/tiny.json" --db "$work/results.db")
echo "$output"
grep -F "1 trials run, 0 already finished, 0 failed" <<< "$output"
grep -F "pact" <<< "$output"

#!/usr/bin/env bash
# Installs nanoattn to a temporary prefix, builds plugins/examples/cosine against it as an
# out-of-tree project, and checks that the installed CLI lists it and that the conformance
# suite finds it through NANOATTN_PLUGIN_PATH and passes it.
# Usage: out_of_tree.sh <nanoattn build dir> <nanoattn source dir>
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() {  # name, command...: runs quietly, shows the log on failure
  local name=$1
  shift
  "$@" > "$work/$name.log" 2>&1 || { echo "out_of_tree: $name failed:"; cat "$work/$name.log"; exit 1; }
}

step install cmake --install "$build" --prefix "$work/prefix"
step configure cmake -S "$src/plugins/examples/cosine" -B "$work/build" \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release
step build cmake --build "$work/build"
test -f "$work/build/cosine.so" || { echo "out_of_tree: no cosine.so was built"; exit 1; }
echo "out_of_tree: built $work/build/cosine.so against the SDK installed in $work/prefix"

NANOATTN_PLUGIN_PATH="$work/build" "$work/prefix/bin/nanoattn" plugins --json > "$work/plugins.json"
grep -q '"name": "cosine"' "$work/plugins.json" || { echo "out_of_tree: the installed nanoattn does not list cosine"; cat "$work/plugins.json"; exit 1; }
grep -q '"name": "softmax"' "$work/plugins.json" || { echo "out_of_tree: the installed nanoattn lost its bundled plugins"; exit 1; }
echo "out_of_tree: the installed 'nanoattn plugins' lists cosine next to the bundled plugins"

NANOATTN_PLUGIN_PATH="$work/build" "$build/bin/test_conformance" > "$work/conformance.log" 2>&1 ||
  { echo "out_of_tree: conformance failed:"; cat "$work/conformance.log"; exit 1; }
grep -q "conformance case: cosine" "$work/conformance.log" || { echo "out_of_tree: conformance did not test cosine"; exit 1; }
grep "conformance case: cosine\|test cases" "$work/conformance.log"

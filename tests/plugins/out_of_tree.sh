#!/usr/bin/env bash
# Installs nanoattn to a temporary prefix, builds plugins/examples/cosine against it as an
# out-of-tree project, and checks that the installed CLI lists it and that the conformance
# suite finds it through NANOATTN_PLUGIN_PATH and passes it; then that the installed
# `nanoattn check-plugin` passes it and fails two broken copies, naming the broken check.
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

# The installed SDK alone checks it: `nanoattn check-plugin` passes the held-out plugin, and two
# broken copies of it fail naming the broken check (one sees the future, one's reference is off).
"$work/prefix/bin/nanoattn" check-plugin "$work/build/cosine.so" > "$work/check.log" 2>&1 ||
  { echo "out_of_tree: check-plugin failed on cosine:"; cat "$work/check.log"; exit 1; }
echo "out_of_tree: $(tail -1 "$work/check.log")"
broken() {  # name, sed expression, the check that must fail
  local name=$1 edit=$2 check=$3 dir="$work/$1"
  mkdir -p "$dir"
  cp "$src/plugins/examples/cosine/CMakeLists.txt" "$dir/"
  sed "$edit" "$src/plugins/examples/cosine/cosine.cpp" > "$dir/cosine.cpp"
  cmp -s "$dir/cosine.cpp" "$src/plugins/examples/cosine/cosine.cpp" && { echo "out_of_tree: $name: the edit changed nothing"; exit 1; }
  step "configure_$name" cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release
  step "build_$name" cmake --build "$dir/build"
  if "$work/prefix/bin/nanoattn" check-plugin "$dir/build/cosine.so" > "$dir/check.log" 2>&1; then
    echo "out_of_tree: check-plugin passed the broken copy '$name'"; cat "$dir/check.log"; exit 1
  fi
  grep -q "^FAIL $check " "$dir/check.log" || { echo "out_of_tree: '$name' did not fail '$check':"; cat "$dir/check.log"; exit 1; }
  echo "out_of_tree: check-plugin fails the broken copy '$name': $(grep "^FAIL $check " "$dir/check.log" | head -1)"
}
broken sees_future 's/softmax(scores, config_.causal)/softmax(scores, false)/' causality
broken off_reference 's/return attend(q, k, v, p, ctx);/return scale(attend(q, k, v, p, ctx), 1.01f);/' reference

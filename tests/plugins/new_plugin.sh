#!/usr/bin/env bash
# A plugin author's whole path with only the installed SDK: install nanoattn to a temporary
# prefix, `nanoattn new-plugin --recurrent`, build the plugin against the prefix alone, run the
# check-plugin test its CMakeLists registered (ctest), and train its example experiment for a
# few steps. Also: `new-plugin` refuses a bad name and never overwrites.
# docs/PLUGINS.md: its sh block is run as written, its file blocks must equal the generated files.
# Usage: new_plugin.sh <nanoattn build dir> <nanoattn source dir>
set -euo pipefail
build=$1
doc=$2/docs/PLUGINS.md
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
step() {  # name, command...: runs quietly, shows the log on failure
  local name=$1
  shift
  "$@" > "$work/$name.log" 2>&1 || { echo "new_plugin: $name failed:"; cat "$work/$name.log"; exit 1; }
}
nanoattn=$work/prefix/bin/nanoattn

step install cmake --install "$build" --prefix "$work/prefix"
step generate "$nanoattn" new-plugin gated --dir "$work/gated" --recurrent
# Only the prefix: no nanoattn source or build folder on any path.
step configure cmake -S "$work/gated" -B "$work/gated/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release
step build cmake --build "$work/gated/build"
test -f "$work/gated/build/gated.so" || { echo "new_plugin: no gated.so was built"; exit 1; }
echo "new_plugin: generated and built gated.so against the SDK installed in $work/prefix"

# The test nanoattn_add_attention_plugin registered: check-plugin on the built plugin.
step ctest ctest --test-dir "$work/gated/build" -V
grep -q "check-plugin: gated passes all" "$work/ctest.log" || { echo "new_plugin: ctest did not run check-plugin"; cat "$work/ctest.log"; exit 1; }
grep -E "^[0-9]+: (recurrent|state_bytes) " "$work/ctest.log" | sed "s/^[0-9]*: //"
grep "check-plugin: gated" "$work/ctest.log" | sed 's/^[0-9]*: //'

# The example experiment, a few steps on a small local text instead of the full corpus.
for i in $(seq 300); do printf 'the cat sat on the mat and the dog ran. '; done > "$work/tiny.txt"
(cd "$work/gated" && step train "$nanoattn" run experiment.yaml --out "$work/runs" --set train.steps=3 --set train.warmup=0 \
  --set eval.every=0 --set log.every=1 --set data.corpus="$work/tiny.txt" --set model.d_model=32)
grep -q "^step 3/3" "$work/train.log" && grep -q "| main | gated " "$work/runs/gated_demo/summary.md" ||
  { echo "new_plugin: training with the plugin did not finish 3 steps:"; cat "$work/train.log"; exit 1; }
echo "new_plugin: trained the example experiment (plugin_paths: [build]) for 3 steps"

# Refusals: a name that is no identifier; a folder that already has the files.
if "$nanoattn" new-plugin 9lives --dir "$work/x" > "$work/bad.log" 2>&1; then echo "new_plugin: accepted '9lives'"; exit 1; fi
grep -q "not a usable plugin name" "$work/bad.log" || { echo "new_plugin: unclear refusal:"; cat "$work/bad.log"; exit 1; }
before=$(sha256sum "$work/gated/gated.cpp")
if "$nanoattn" new-plugin gated --dir "$work/gated" > "$work/again.log" 2>&1; then echo "new_plugin: overwrote a plugin"; exit 1; fi
grep -q "already exists" "$work/again.log" && [ "$before" = "$(sha256sum "$work/gated/gated.cpp")" ] ||
  { echo "new_plugin: the second new-plugin did not refuse cleanly:"; cat "$work/again.log"; exit 1; }
echo "new_plugin: refuses a bad name and an existing plugin folder"

# docs/PLUGINS.md: the walkthrough block (sh) runs as written; each file block is that file.
block() {  # the fenced block after the line "$1" (or the first ```$1 block when $1 is a language)
  awk -v head="$1" '$0 == head {f = 1; next} f && /^```/ {if (n++) exit; next} f && n == 1' "$doc"
}
mkdir "$work/doc"
block_sh=$(awk '/^```sh$/ {f = 1; next} f && /^```/ {exit} f' "$doc")
(cd "$work/doc" && PATH="$work/prefix/bin:$PATH" PREFIX="$work/prefix" step doc_walkthrough bash -euo pipefail -c "$block_sh")
grep -q "check-plugin: gated passes all" "$work/doc_walkthrough.log" ||
  { echo "new_plugin: the doc's walkthrough did not pass check-plugin:"; cat "$work/doc_walkthrough.log"; exit 1; }
for f in CMakeLists.txt gated.cpp experiment.yaml; do
  diff <(block "\`gated/$f\`:") "$work/doc/gated/$f" > "$work/doc_$f.diff" ||
    { echo "new_plugin: docs/PLUGINS.md's gated/$f differs from what new-plugin writes:"; cat "$work/doc_$f.diff"; exit 1; }
done
echo "new_plugin: docs/PLUGINS.md's walkthrough runs and its file blocks equal the generated plugin"

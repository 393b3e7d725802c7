#!/usr/bin/env bash
# Bad input through the command line: each fails with exit code 1 and a message naming the
# file, position or key and what would be valid. Usage: cli_errors.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
failures=0

# expect_error "<what>" "<expected text>" command...
expect_error() {
  local what=$1 expected=$2
  shift 2
  if "$@" > out.txt 2> err.txt; then
    echo "FAIL ($what): succeeded"; failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$expected" err.txt; then
    echo "FAIL ($what): expected '$expected' in:"; cat err.txt; failures=$((failures + 1)); return
  fi
  echo "ok ($what): $(head -c 300 err.txt)"
}
variant() {  # variant <name> <sed expression>: exp.yaml edited
  sed "$2" exp.yaml > "$1.yaml"
}

variant malformed 's/train: {steps/train: {{steps/'
expect_error "malformed YAML" "malformed.yaml:17:9: malformed YAML" "$nanoattn" run malformed.yaml
variant deepkey 's/{feed_forward: {mult: 2}}/{feed_forward: {mult: 2, multt: 3}}/'
expect_error "unknown key deep in the model" "has no option 'multt'; valid options:" "$nanoattn" run deepkey.yaml
variant wrongtype 's/n_heads: 2/n_heads: two/'
expect_error "wrong type" "wrongtype.yaml:13:69: block 'attention': option 'n_heads' must be an integer, got 'two'" "$nanoattn" run wrongtype.yaml
variant zero 's/d_model: 32/d_model: 0/'
expect_error "zero size" "'d_model' must be > 0, got 0" "$nanoattn" run zero.yaml
variant negative 's/batch_size: 4/batch_size: -4/'
expect_error "negative size" "train.batch_size must be >= 1, got -4" "$nanoattn" run negative.yaml
variant heads 's/n_heads: 2/n_heads: 5/'
expect_error "heads do not divide d_model" "n_heads 5 must be > 0 and divide d_model 32" "$nanoattn" run heads.yaml
variant block 's/token_embedding: {}/token_embeding: {}/'
expect_error "unknown block" "unknown block 'token_embeding'; known blocks:" "$nanoattn" run block.yaml
variant plugin 's/plugin: linear/plugin: lineer/'
expect_error "unknown plugin" "lineer" "$nanoattn" run plugin.yaml
variant nofile 's/corpus: tiny.txt/corpus: missing.txt/'
expect_error "missing corpus file" "missing.txt" "$nanoattn" run nofile.yaml
: > empty.txt
variant empty 's/corpus: tiny.txt/corpus: empty.txt/'
expect_error "empty corpus" "empty.txt" "$nanoattn" run empty.yaml
expect_error "unknown --set key" "exp.yaml: train: unknown key 'stpes'; valid keys: batch_size" "$nanoattn" run exp.yaml --set train.stpes=3
expect_error "missing experiment file" "absent.yaml: no such experiment file" "$nanoattn" run absent.yaml

# Checkpoints: not HDF5, another format version, a model that has no RNN form.
echo "not a checkpoint" > text.h5
expect_error "not an HDF5 file" "text.h5: not an HDF5 file" "$nanoattn" eval text.h5
expect_error "missing checkpoint" "nothing.h5" "$nanoattn" eval nothing.h5
STEPS=2 source "$(dirname "$0")/tiny_experiment.sh"
"$nanoattn" run exp.yaml --out out --set 'model.blocks.2.repeat.blocks.0.residual.body.0.attention.plugin=softmax' \
  > /dev/null 2>&1
expect_error "recurrent eval of softmax" "uses plugin 'softmax', which has no RNN form" \
  "$nanoattn" eval out/tiny/main/checkpoint.h5 --mode recurrent
cp out/tiny/main/checkpoint.h5 v2.h5
/usr/bin/python3 -c "import h5py; f = h5py.File('v2.h5', 'r+'); f.attrs['format_version'] = 2"
expect_error "another format version" "format version 2" "$nanoattn" eval v2.h5


# Issue 21: integers refuse fractions and out-of-range values wherever they are read (the
# model's attention defaults, a block option, --set), never rounding or wrapping them.
STEPS=2 source "$(dirname "$0")/tiny_experiment.sh"
sed -e 's/^  d_model: 32$/  d_model: 32\n  attention: {n_heads: 2.5}/' -e 's/plugin: linear, n_heads: 2/plugin: linear/' \
  exp.yaml > default_heads.yaml
expect_error "fraction in model.attention" \
  "default_heads.yaml:6:24: model.attention: n_heads must be an integer, got '2.5' (a fraction: give a whole number, e.g. 2 or 3)" \
  "$nanoattn" run default_heads.yaml
expect_error "fraction in model.attention by --set" "exp.yaml: model.attention: n_heads must be an integer, got '2.5' (a fraction" \
  "$nanoattn" run exp.yaml --set model.attention.n_heads=2.5
variant bigmult 's/{feed_forward: {mult: 2}}/{feed_forward: {mult: 1e30}}/'
expect_error "out-of-range block option" \
  "block 'feed_forward': option 'mult' must be an integer, got '1e30' (out of range: it must be between" \
  "$nanoattn" run bigmult.yaml
expect_error "fraction by --set" "train.steps must be an integer, got '2.5' (a fraction" "$nanoattn" run exp.yaml --set train.steps=2.5
# A map given by --set carries no position: its errors name --set, not "line 1" of the file.
expect_error "bad option in a --set map" "exp.yaml: --set: linear attention: option 'nu' (dpfp expansion) must be >= 1, got 0" \
  "$nanoattn" run exp.yaml --set 'model.blocks.2.repeat.blocks.0.residual.body.0.attention.options={feature_map: dpfp, nu: 0}'
expect_error "list index by --set" "'1x' indexes a list, so it must be a number" \
  "$nanoattn" run exp.yaml --set model.blocks.1x.positional.kind=none
variant exact 's/d_model: 32/d_model: 3.2e1/'
if "$nanoattn" params exact.yaml > out.txt 2> err.txt; then echo "ok (an exact whole number: d_model: 3.2e1)"
else echo "FAIL (d_model: 3.2e1 refused):"; cat err.txt; failures=$((failures + 1)); fi

# bench --option is checked like a YAML plugin option, before anything is timed (exit 1).
bench_error() {  # bench_error <what> <expected> <bench attention args>...
  local what=$1 expected=$2
  shift 2
  expect_error "$what" "$expected" "$nanoattn" bench attention --lengths 16 --repeats 1 "$@"
  if grep -q "skipped" out.txt; then echo "FAIL ($what): a row was run"; failures=$((failures + 1)); fi
}
bench_error "bench: wrong type" "--option window=wide: option 'window' of plugin 'local' must be an integer, got 'wide'" \
  --plugin local --option window=wide
bench_error "bench: fraction" "option 'window' of plugin 'local' must be an integer, got '2.5' (a fraction" \
  --plugin local --option window=2.5
bench_error "bench: not a choice" "option 'feature_map' of plugin 'linear' must be one of elu|relu|dpfp|favor, got 'cos'" \
  --plugin linear --plugin local --option feature_map=cos
bench_error "bench: unknown option" "--option windw=3: plugin 'local' has no option 'windw'. Valid options:" \
  --plugin local --option windw=3
bench_error "bench: option no plugin has" "--option windw=3: none of the plugins run (local, linear) has an option 'windw'" \
  --plugin local --plugin linear --option windw=3
# bench's own integer options: the same rule (CLI11 alone would saturate to INT64_MAX).
bench_error "bench: fraction for --batch" "--batch-size: must be an integer, got '2.5' (a fraction" --plugin local --batch 2.5
bench_error "bench: out-of-range length" "--sweep-lengths: must be an integer, got '99999999999999999999' (out of range" \
  --plugin local --lengths 16,99999999999999999999
expect_error "bench train: fraction for --steps" "--steps: must be an integer, got '2.5' (a fraction" \
  "$nanoattn" bench train exp.yaml --steps 2.5
# --warmup 0 is valid (it took the median of no steps and crashed).
if "$nanoattn" bench train exp.yaml --steps 1 --warmup 0 > out.txt 2> err.txt && grep -q "tokens/s" out.txt; then
  echo "ok (bench train --warmup 0)"
else
  echo "FAIL (bench train --warmup 0):"; cat out.txt err.txt; failures=$((failures + 1))
fi

# A plugin folder cannot crash the host: a truncated copy of a bundled plugin is listed as
# skipped, with what is cut, and the command succeeds.
mkdir -p broken
local_so=$("$nanoattn" plugins --json | /usr/bin/python3 -c \
  'import json, sys; print(next(p["file"] for p in json.load(sys.stdin)["plugins"] if p["name"] == "local"))')
head -c 3000 "$local_so" > broken/cut.so
echo "not a library" > broken/x.so
if "$nanoattn" plugins --path broken > out.txt 2> err.txt \
    && grep -qF "skipped broken/cut.so: truncated: segment " out.txt \
    && grep -qF "rebuild the plugin" out.txt \
    && grep -qF "skipped broken/x.so: not a shared library" out.txt \
    && grep -q "^softmax  (" out.txt; then
  echo "ok (truncated plugin): $(grep -F broken/cut.so out.txt)"
else
  echo "FAIL (truncated plugin): exit $?"; cat out.txt err.txt; failures=$((failures + 1))
fi

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all errors clear"

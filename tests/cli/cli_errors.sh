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

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all errors clear"

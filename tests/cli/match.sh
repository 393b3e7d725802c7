#!/usr/bin/env bash
# `nanoattn match`: candidates re-balanced to a softmax base. The params column equals what
# `nanoattn params` prints for the overrides match reports; --solve d_model gives a value n_heads
# divides; an impossible tolerance and bad --vary text fail naming the candidate or the text.
# Usage: match.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# A softmax base whose feed-forward width is the model-level default (what d_ff solves for).
cat > base.yaml <<YAML
name: base
data: {corpus: tiny.txt, val_fraction: 0.1, test_fraction: 0.1}
model:
  d_model: 32
  max_len: 32
  attention: {plugin: softmax, n_heads: 4}
  feed_forward: {hidden: 128}
  blocks:
    - token_embedding: {}
    - positional: {kind: learned}
    - repeat:
        n: 2
        blocks:
          - residual: {norm_name: ln1, body: [attention: {}]}
          - residual: {norm_name: ln2, body: [feed_forward: {}]}
    - layernorm: {name: ln_f}
    - lm_head: {tied_to: tok}
train: {seq_len: 32}
runs:
  - name: softmax
YAML
delta='delta3:model.attention={plugin: delta, n_heads: 4, options: {feature_map: dpfp, nu: 3}}'
linear='lin3:model.attention={plugin: linear, n_heads: 4, options: {feature_map: dpfp, nu: 3}}'

# The table, then the same as JSON.
"$nanoattn" match base.yaml --vary "$delta" --vary "$linear" > table.txt || { cat table.txt; fail "match exited $?"; }
cat table.txt
grep -q '^delta3 ' table.txt || fail "no delta3 row in the table"
"$nanoattn" match base.yaml --vary "$delta" --json > match.json || fail "match --json exited $?"

# The params total of `nanoattn params` for the reported overrides, and match's own.
/usr/bin/python3 - match.json > check.sh <<'PY'
import json, shlex, sys
j = json.load(open(sys.argv[1]))
c = j["candidates"][0]
p = c["cost"]["params"]
assert c["within_tolerance"] and abs(c["ratio"] - 1) <= 0.02, c
assert sum(p[k] for k in ("embeddings", "attention", "feature_map", "feed_forward", "norms", "head", "other")) == p["total"], p
assert c["overrides"][-1] == "model.feed_forward.hidden=%d" % c["value"], c["overrides"]
sets = " ".join("--set " + shlex.quote(o) for o in c["overrides"])
print("expected=%d; sets=(%s)" % (p["total"], sets))
PY
source check.sh
"$nanoattn" params base.yaml "${sets[@]}" > params.txt
counted=$(awk '$1 == "total" {gsub(",", "", $3); print $3}' params.txt)
[ "$counted" = "$expected" ] || fail "match says $expected parameters, nanoattn params says $counted"
# The table's params column holds the same number.
table_params=$(awk '$1 == "delta3" {gsub(",", "", $3); print $3}' table.txt)
[ "$table_params" = "$expected" ] || fail "table params $table_params, json $expected"
echo "ok: params $expected from match and from nanoattn params"

# d_model: only values n_heads (4) divides.
"$nanoattn" match base.yaml --vary "$delta;model.feed_forward.hidden=512" --solve d_model --tolerance 5% --json > dm.json ||
  fail "match --solve d_model exited $?"
dm=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["candidates"][0]["value"])' dm.json)
[ $((dm % 4)) -eq 0 ] && [ "$dm" -lt 32 ] || fail "--solve d_model gave $dm (want a multiple of 4 below 32)"
echo "ok: --solve d_model gave $dm"

# expect_error "<what>" "<expected text>" command...
expect_error() {
  local what=$1 expected=$2
  shift 2
  if "$@" > out.txt 2> err.txt; then
    fail "$what: succeeded"; return
  fi
  grep -qF -- "$expected" err.txt || { fail "$what: expected '$expected' in:"; cat err.txt; return; }
  echo "ok ($what): $(head -c 300 err.txt)"
}
# beta adds 2 (4 x 32 + 4) = 264 parameters, a unit of d_ff 2 (2 x 32 + 1) = 130: never exact
expect_error "impossible tolerance" "candidate 'delta3'" "$nanoattn" match base.yaml --vary "$delta" --tolerance 0%
grep -qF "outside the tolerance 0%" err.txt || fail "the tolerance message does not give the tolerance"
grep -q '^delta3 ' out.txt || fail "the table is printed before the failure"
expect_error "bad --vary text" "--vary 'no assignment here'" "$nanoattn" match base.yaml --vary 'no assignment here'
expect_error "unknown key in --vary" "candidate 'typo'" "$nanoattn" match base.yaml --vary 'typo:model.atention.plugin=linear'
expect_error "bad tolerance" "'two' is not a tolerance" "$nanoattn" match base.yaml --vary "$delta" --tolerance two
expect_error "unknown budget" "valid budgets: params, flops, state" "$nanoattn" match base.yaml --vary "$delta" --budget bytes

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "match: all passed"

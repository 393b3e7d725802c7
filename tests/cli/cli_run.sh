#!/usr/bin/env bash
# `nanoattn run`, `eval`, `sample` and `params` end to end on a tiny experiment: the files each
# writes, the comparison table, and the RNN form giving the same bits per character (1e-5 relative) and
# the same text as the parallel form. Usage: cli_run.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
STEPS=60 source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
cat >> exp.yaml <<'YAML'
runs:
  - name: linear
  - name: softmax
    model: {blocks: [{token_embedding: {}}, {positional: {}}, {residual: {body: [{attention: {plugin: softmax, n_heads: 2}}]}}, {residual: {norm_name: ln2, body: [{feed_forward: {mult: 2}}]}}, {layernorm: {name: ln_f}}, {lm_head: {tied_to: tok}}]}
YAML
"$nanoattn" run exp.yaml --out out > run.log 2>&1 || { cat run.log; exit 1; }
for run in linear softmax; do
  for f in config.yaml metrics.jsonl metrics.csv checkpoint.h5 summary.json; do
    [ -s "out/tiny/$run/$f" ] || { echo "FAIL: out/tiny/$run/$f missing"; exit 1; }
  done
done
grep -q "| linear  | linear" run.log && grep -q "| softmax | softmax" run.log || { echo "FAIL: no table"; cat run.log; exit 1; }
[ "$(wc -l < out/tiny/summary.csv)" = 3 ] || { echo "FAIL: summary.csv"; exit 1; }
h5dump -H out/tiny/linear/checkpoint.h5 > /dev/null

# eval: parallel and recurrent agree to 1e-5 of the bits per character (float32 rounding only).
json_field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p"; }
par=$("$nanoattn" eval out/tiny/linear/checkpoint.h5 --json | json_field bpc)
rec=$("$nanoattn" eval out/tiny/linear/checkpoint.h5 --json --mode recurrent | json_field bpc)
summary=$(json_field val_bpc < out/tiny/linear/summary.json)
echo "val bpc: parallel $par, recurrent $rec, summary.json $summary"
awk -v a="$par" -v b="$rec" -v s="$summary" 'BEGIN { d = a - b; e = a - s; exit !(d < 1e-5 * a && d > -1e-5 * a && e < 1e-9 && e > -1e-9) }' \
  || { echo "FAIL: parallel and recurrent bpc differ"; exit 1; }

# sample: the same seed gives the same text in both forms.
p=$("$nanoattn" sample out/tiny/linear/checkpoint.h5 --tokens 27 --seed 4 --prompt "the ")
r=$("$nanoattn" sample out/tiny/linear/checkpoint.h5 --tokens 27 --seed 4 --prompt "the " --mode recurrent)
echo "sample: $p"
[ "$p" = "$r" ] || { echo "FAIL: recurrent sample differs: $r"; exit 1; }
[ "${#p}" -eq 31 ] || { echo "FAIL: expected 31 characters, got ${#p}"; exit 1; }

# params: the total for each run.
"$nanoattn" params exp.yaml > params.txt
grep -qi "total" params.txt || { echo "FAIL: params"; cat params.txt; exit 1; }

# --resume on finished runs skips them and prints the same table.
"$nanoattn" run exp.yaml --out out --resume > again.log 2>&1
grep -q "run linear: already finished" again.log
echo "cli run/eval/sample/params ok"

# bench train: one JSON line per run with the throughput fields, and a profile whose rows name
# the ops and blocks of the model (a functional check; the numbers are not timed here).
"$nanoattn" bench train exp.yaml --only softmax --steps 2 --warmup 1 --profile --json > bench.json
/usr/bin/python3 - bench.json <<'PY'
import json, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert j["run"] == "softmax" and j["tokens_per_s"] > 0 and j["peak_rss_mib"] > 0 and 0 < j["mfu"], j
rows = j["profile"]["rows"]
ops = {r["op"] for r in rows}
blocks = {r["block"] for r in rows}
assert {"linear", "attend", "gelu_linear", "split_heads", "layernorm", "cross_entropy", "optimizer"} <= ops, ops
assert {"attention", "feed_forward", "lm_head"} <= blocks, blocks
assert all(r["forward_s"] >= 0 and r["backward_s"] >= 0 for r in rows)
assert sum(r["backward_s"] for r in rows if r["op"] == "linear") > 0
print("bench train: ok,", len(rows), "profile rows")
PY

#!/usr/bin/env bash
# `nanoattn bench generate` on the tiny experiment (softmax and linear runs, a few tokens): the
# JSON fields exist and are sane; the KV cache draws the tokens the uncached path draws, at 1 and
# 2 threads; the RNN's state is constant, the cache's grows; clear errors; `sample --mode cached`.
# Usage: bench_generate.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
# The blocks take their plugin from the model's default, which each run sets.
sed -i 's/{attention: {plugin: linear, n_heads: 2}}/{attention: {n_heads: 2}}/' exp.yaml
cat >> exp.yaml <<YAML
runs:
  - name: softmax
    model: {attention: {plugin: softmax}}
  - name: linear
    model: {attention: {plugin: linear}}
YAML
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
gen() { "$nanoattn" bench generate exp.yaml --json --prompt 5 --tokens 20 "$@" 2>/dev/null; }

for mode in cached parallel; do gen --mode "$mode" --threads 1 > "$mode.jsonl"; done
gen --mode cached --threads 2 --batch 3 > batch.jsonl
/usr/bin/python3 - <<'PY' || fail "the JSON lines (above)"
import json
rows = {m: [json.loads(l) for l in open(f"{m}.jsonl")] for m in ("cached", "parallel", "batch")}
ok = True
def check(cond, what):
    global ok
    if not cond:
        print("  not so:", what); ok = False
for m in ("cached", "parallel"):
    check([r["run"] for r in rows[m]] == ["softmax", "linear"], f"{m}: one line per run, in order")
for r in rows["cached"] + rows["parallel"] + rows["batch"]:
    for k in ("tokens_per_s", "us_per_token", "us_per_token_deciles", "state_bytes", "mode", "tokens_fnv1a"):
        check(k in r, f"{r['run']}: field {k}")
    check(r["tokens_per_s"] > 0 and len(r["us_per_token_deciles"]) == 10
          and all(d > 0 for d in r["us_per_token_deciles"]), f"{r['run']}: positive times, ten deciles")
    check(r["prompt"] == 5 and r["tokens"] == 20, f"{r['run']}: prompt and tokens as asked")
soft, lin = rows["cached"]
check(soft["mode"] == "cached" and lin["mode"] == "cached", "both runs cached")
# Tiny: d_model 32, 2 layers, dk = dv = 16, 2 heads: 2 x 2 x 32 floats per token for softmax.
check(soft["state_bytes"] == 25 * 2 * 2 * 32 * 4, f"softmax cache of 25 positions: {soft['state_bytes']}")
check(soft["state_bytes_per_token"] == 2 * 2 * 32 * 4, "softmax: bytes per new token")
check(lin["state_bytes"] == lin["state_bytes_after_prompt"] > 0 and lin["state_bytes_per_token"] == 0,
      "linear: constant state")
for c, p in zip(rows["cached"], rows["parallel"]):
    check(c["tokens_fnv1a"] == p["tokens_fnv1a"], f"{c['run']}: cached tokens == uncached tokens")
    check(p["mode"] == "parallel" and p["state_bytes"] == 0, f"{p['run']}: parallel holds no state")
check(rows["batch"][0]["batch"] == 3 and rows["batch"][0]["threads"] == 2, "--batch 3 --threads 2")
raise SystemExit(0 if ok else 1)
PY

# The same tokens at another thread count (a batch of one is the same draws as above).
[[ $(gen --mode cached --threads 2 --only softmax | grep -o '"tokens_fnv1a":"[0-9]*"') == \
   $(grep -o '"tokens_fnv1a":"[0-9]*"' cached.jsonl | head -1) ]] || fail "cached tokens differ at 2 threads"

expect_error() {  # expect_error "message part" args...
  local want=$1; shift
  if out=$("$nanoattn" bench generate exp.yaml "$@" 2>&1); then fail "no error for $*"; fi
  [[ $out == *"$want"* ]] || fail "for $*: wanted '$want', got: $out"
}
expect_error "--only nope: no such run; the runs are softmax, linear" --only nope --tokens 10
expect_error "learned positions end at max_len 32" --only softmax --prompt 20 --tokens 20 --mode cached
expect_error "(e.g. --set model.max_len=40)" --only linear --prompt 20 --tokens 20
expect_error "--prompt 99999999 is longer than the corpus" --prompt 99999999 --tokens 10
expect_error "--tokens must be >= 10" --tokens 3
# Human output: the table's lines.
out=$("$nanoattn" bench generate exp.yaml --only linear --prompt 4 --tokens 10 2>&1)
[[ $out == *"tokens/s"* && $out == *"us/token"* && $out == *"OpenBLAS kernels"* ]] || fail "text output: $out"

# `nanoattn sample --mode cached` on a trained softmax model: the text --mode parallel gives;
# --mode recurrent (constant memory) refuses it and names --mode cached.
"$nanoattn" run exp.yaml --only softmax --out runs --set train.steps=5 --set train.warmup=1 > /dev/null 2>&1 ||
  fail "training the softmax run"
ck=runs/tiny/softmax/checkpoint.h5
[[ -f $ck ]] || fail "no checkpoint at $ck"
par=$("$nanoattn" sample "$ck" --tokens 20 --seed 4 --mode parallel) || fail "sample --mode parallel"
cached=$("$nanoattn" sample "$ck" --tokens 20 --seed 4 --mode cached) || fail "sample --mode cached"
[[ -n $par && $par == "$cached" ]] || fail "sample --mode cached gave '$cached', --mode parallel '$par'"
out=$("$nanoattn" sample "$ck" --tokens 5 --mode recurrent 2>&1) && fail "sample --mode recurrent ran a softmax model"
[[ $out == *"no RNN form"*"--mode cached runs it with its KV cache"* ]] || fail "sample --mode recurrent: $out"

[[ $failures == 0 ]] && echo "bench_generate: all checks passed" || { echo "$failures failure(s)"; exit 1; }

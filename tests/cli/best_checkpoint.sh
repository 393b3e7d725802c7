#!/usr/bin/env bash
# eval.keep_best and train.patience end to end. The corpus makes validation get worse as training
# goes on, always: the training split repeats "abcd", the held-out splits "dcba", so the model
# learns transitions the held-out text never takes, and the best val is the first evaluation.
# Checks: best.h5 is that step's checkpoint, the test numbers are its own (as `eval best.h5`
# gives them), the table says which step it shows; patience stops the run after N evaluations
# without a better val; a run stopped part way and resumed ends with bitwise the same best.h5,
# checkpoint and summary as one that never stopped. Usage: best_checkpoint.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
/usr/bin/python3 -c "print('abcd' * 1750 + 'dcba' * 750, end='')" > text.txt
cat > exp.yaml <<'YAML'
name: kb
seed: 3
data: {corpus: text.txt, val_fraction: 0.15, test_fraction: 0.15}
model:
  d_model: 32
  max_len: 32
  blocks:
    - token_embedding: {}
    - positional: {kind: learned}
    - residual: {body: [{attention: {plugin: softmax, n_heads: 2}}]}
    - residual: {norm_name: ln2, body: [{feed_forward: {mult: 4}}]}
    - layernorm: {name: ln_f}
    - lm_head: {tied_to: tok}
train: {steps: 100, batch_size: 16, seq_len: 32, lr: 0.02, warmup: 5, weight_decay: 0}
eval: {every: 10, batch_size: 8, keep_best: true}
log: {every: 10}
YAML
fail() { echo "FAIL: $*"; exit 1; }
json_field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$2"; }

"$nanoattn" run exp.yaml --out a > a.log 2>&1 || { cat a.log; fail "run"; }
s=a/kb/main/summary.json
[ "$(json_field best_step $s)" = 10 ] || fail "best_step $(json_field best_step $s), expected 10"
grep -q '"test_at_best": true' $s || fail "test_at_best not set"
grep -q "evaluating the best checkpoint: step 10" a.log || fail "no message naming the best step"
grep -q "(best: step 10)" a/kb/summary.md || fail "the table does not say it shows step 10"
/usr/bin/python3 - a/kb/main <<'PY'
import h5py, json, sys
d = sys.argv[1]
s = json.load(open(f"{d}/summary.json"))
with h5py.File(f"{d}/best.h5") as f:
    assert f.attrs["step"] == 10 and f.attrs["best_step"] == 10, (f.attrs["step"], f.attrs["best_step"])
    assert f.attrs["best_val_bpc"] == s["best_val_bpc"]
with h5py.File(f"{d}/checkpoint.h5") as f:
    assert f.attrs["step"] == 100 and f.attrs["best_step"] == 10
vals = [(r["step"], r["val_bpc"]) for r in map(json.loads, open(f"{d}/metrics.jsonl")) if "val_bpc" in r]
assert min(vals, key=lambda v: v[1]) == (10, s["best_val_bpc"]), vals
assert s["val_bpc"] == vals[-1][1] and s["val_bpc"] > s["best_val_bpc"] + 1, (s, vals)  # the last params are worse
PY
best=$("$nanoattn" eval a/kb/main/best.h5 --split test --json > e.json && json_field bpc e.json)
last=$("$nanoattn" eval a/kb/main/checkpoint.h5 --split test --json > e.json && json_field bpc e.json)
test_bpc=$(json_field test_bpc $s)
echo "test bpc: summary $test_bpc, eval best.h5 $best, eval checkpoint.h5 $last"
awk -v a="$test_bpc" -v b="$best" -v c="$last" 'BEGIN { exit !(a - b < 1e-9 && b - a < 1e-9 && c > a + 1) }' \
  || fail "the test bpc is not best.h5's"

# patience 3: evaluations at 20, 30, 40 are no better than step 10's, so it stops at step 40.
"$nanoattn" run exp.yaml --out p --set train.patience=3 > p.log 2>&1 || { cat p.log; fail "patience run"; }
grep -q "early stop at step 40: no better val bpc in 3 evaluations since step 10" p.log || { cat p.log; fail "no early stop"; }
[ "$(json_field steps p/kb/main/summary.json)" = 40 ] && grep -q '"finished": true' p/kb/main/summary.json \
  || fail "an early-stopped run is finished at step 40"

# Stopped part way by the time guard, then resumed: the same files as a run that never stopped.
"$nanoattn" run exp.yaml --out r --set train.patience=5 --set train.time_limit=0.05 > r.log 2>&1 || { cat r.log; fail "r"; }
grep -q '"finished": false' r/kb/main/summary.json || fail "the time guard did not stop the run (too fast a machine?)"
"$nanoattn" run exp.yaml --out r --set train.patience=5 --resume > r2.log 2>&1 || { cat r2.log; fail "resume"; }
"$nanoattn" run exp.yaml --out u --set train.patience=5 > u.log 2>&1 || { cat u.log; fail "u"; }
/usr/bin/python3 - r/kb/main u/kb/main <<'PY'
import h5py, json, sys
r, u = sys.argv[1:]
for name in ("best.h5", "checkpoint.h5"):
    with h5py.File(f"{r}/{name}") as a, h5py.File(f"{u}/{name}") as b:
        for k in ("step", "best_step", "best_val_bpc"):
            assert a.attrs[k] == b.attrs[k], (name, k, a.attrs[k], b.attrs[k])
        names = []
        a["params"].visit(lambda n: names.append(n) if isinstance(a["params"][n], h5py.Dataset) else None)
        for n in names:
            assert (a["params"][n][()] == b["params"][n][()]).all(), (name, n)
sr, su = json.load(open(f"{r}/summary.json")), json.load(open(f"{u}/summary.json"))
for k in ("steps", "best_step", "best_val_bpc", "val_bpc", "test_bpc", "finished"):
    assert sr[k] == su[k], (k, sr[k], su[k])
assert sr["tokens_per_s"] > 0, sr  # over both sessions
print("resumed == uninterrupted:", su["steps"], "steps, best step", su["best_step"])
PY

# Stopped by the time guard before the first evaluation: no best yet, the last parameters are
# evaluated (and the stop's extra evaluation never chose a best above: resumed == uninterrupted).
"$nanoattn" run exp.yaml --out t --set train.time_limit=0.000001 > t.log 2>&1 || { cat t.log; fail "an early time stop"; }
grep -q '"finished": false' t/kb/main/summary.json && grep -q '"test_at_best": false' t/kb/main/summary.json \
  || { cat t/kb/main/summary.json; fail "a run stopped before any evaluation claims a best checkpoint"; }

# patience counts evaluations: without any it is refused, naming the key.
if "$nanoattn" run exp.yaml --out x --set train.patience=2 --set eval.every=0 > x.log 2>&1; then fail "accepted"; fi
grep -q "exp.yaml:.*train.patience counts evaluations, but eval.every is 0" x.log || { cat x.log; fail "message"; }
echo "best_checkpoint: ok"

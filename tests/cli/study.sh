#!/usr/bin/env bash
# `nanoattn study` end to end on a tiny study: every part runs (tuning, matched variants, the
# teacher's predictions, distillation, KL, the RNN check, generation speed, the report), and a
# study killed with kill -9 and started again completes without rerunning finished runs and
# gives the same report (timing masked). Usage: study.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'pkill -9 -f "$work/" 2> /dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
source "$(dirname "$0")/tiny_experiment.sh"  # $work/tiny.txt
cd "$work"
cat > s.yaml <<'YAML'
name: tiny
seeds: [1, 2]
jobs: 2
corpora: [{name: tiny, data: {corpus: tiny.txt, val_fraction: 0.1, test_fraction: 0.1}}]
experiment:
  model:
    d_model: 32
    max_len: 16
    attention: {plugin: softmax, n_heads: 2}
    feed_forward: {hidden: 128}
    dropout: {p: 0.0}
    blocks:
      - token_embedding: {}
      - positional: {kind: learned}
      - residual: {body: [attention: {}, dropout: {}]}
      - residual: {norm_name: ln2, body: [feed_forward: {}]}
      - layernorm: {name: ln_f}
      - lm_head: {tied_to: tok}
  train: {steps: 30, batch_size: 4, seq_len: 16, lr: 0.01, warmup: 3, windows: aligned}
  eval: {every: 10, batch_size: 16, dump_dtype: float16}
  log: {every: 10}
tune: {train.lr: [0.005, 0.01], model.dropout.p: [0.0]}
match: {budget: params, tolerance: 0.02, solve: d_ff}
variants:
  - {name: elu, model: {attention: {plugin: linear}}}
  - {name: dpfp2, model: {attention: {plugin: linear, options: {feature_map: dpfp, nu: 2}}}}
  - {name: delta, model: {attention: {plugin: delta}}, distill: false}
distill: {alpha: 0.5, temperature: 2.0, top_k: 4}
generate: {tokens: 20}
YAML
fail() { echo "FAIL: $*"; exit 1; }

# The uninterrupted study.
"$nanoattn" study s.yaml --out A > a.log 2>&1 || { cat a.log; fail "study A"; }
grep -q "study tiny: complete" a.log || fail "no completion line"
/usr/bin/python3 - A <<'PY'
import json, os, sys, h5py
d = sys.argv[1]
m = json.load(open(f"{d}/study.json"))
runs = m["runs"]
# 2 seeds x (softmax + elu + elu.distill + dpfp2 + dpfp2.distill + delta)
assert len(runs) == 12, len(runs)
assert all(r["status"] == "done" for r in runs), [r for r in runs if r["status"] != "done"]
base = {r["seed"]: r for r in runs if r["baseline"]}
base_params = json.load(open(f"{d}/{base[1]['dir']}/cost.json"))["params"]["total"]
for r in runs:
    rd = f"{d}/{r['dir']}"
    s = json.load(open(f"{rd}/summary.json"))
    cost = json.load(open(f"{rd}/cost.json"))
    assert cost["params"]["total"] == s["params"], (r["dir"], cost["params"]["total"], s["params"])
    assert abs(s["params"] / base_params - 1) <= 0.02, (r["dir"], s["params"], base_params)
    assert s["test_at_best"] and os.path.exists(f"{rd}/best.h5") and os.path.exists(f"{rd}/preds_test.h5")
    assert json.load(open(f"{rd}/generate.json"))["generate_tokens_per_s"] > 0
    if not r["baseline"]:
        with h5py.File(f"{rd}/kl_vs_softmax.h5") as f:
            assert f["kl_ab"].shape[0] > 0
    if r["recurrent"]:
        rec = json.load(open(f"{rd}/recurrent.json"))
        assert rec["abs_diff"] <= 1e-4, (r["dir"], rec)
    if r["distilled"]:
        cfg = open(f"{rd}/config.yaml").read()
        assert "teacher_train.h5" in cfg, r["dir"]
assert len(m["corpora"][0]["tuning"]) == 2 and m["corpora"][0]["chosen"]["lr"] in (0.005, 0.01)
print("study A:", len(runs), "runs, baseline", base_params, "params")
PY
[ -s A/report.md ] && [ -s A/report.json ] || fail "no report"
# Every number of the report from the runs' own files, with h5py and numpy.
/usr/bin/python3 - A <<'PY'
import json, sys, h5py, numpy as np
d = sys.argv[1]
rep = json.load(open(f"{d}/report.json"))
rows = rep["corpora"]["tiny"]["rows"]
assert len(rows) == 6, [r["label"] for r in rows]
for row in rows:
    for seed, value in row["test"]["per_seed"].items():
        [src] = [p for p in row["sources"]["test"] if f"/seed{seed}/" in p]
        with h5py.File(f"{d}/{src.replace('summary.json', 'preds_test.h5')}") as f:
            bpc = f["nll"][()].astype(np.float64).mean() / np.log(2)
        assert abs(bpc - value) <= 1e-6 * value, (row["label"], seed, bpc, value)
    test = np.array(list(row["test"]["per_seed"].values()))
    assert abs(test.mean() - row["test"]["mean"]) <= 1e-12, row["label"]
    if not row["baseline"]:
        kl = [h5py.File(f"{d}/{p}")["kl_ab"][()].mean() for p in row["sources"]["kl"]]
        assert abs(np.mean(kl) - row["kl"]["mean"]) <= 1e-9 * max(1, abs(row["kl"]["mean"])), row["label"]
print("report recomputed from summaries, dumps and KL files:", len(rows), "rows")
PY

# The same study, killed with kill -9 once two runs have finished, then started again.
"$nanoattn" study s.yaml --out B > b1.log 2>&1 &
pid=$!
for ((i = 0; i < 600; i++)); do
  n=$( (find B -name summary.json 2> /dev/null || true) | wc -l)
  [ "$n" -ge 3 ] && break
  sleep 0.1
done
kill -9 $pid
wait $pid 2> /dev/null || true
sleep 0.5
pgrep -f "$work/B" > /dev/null && fail "a child of the killed study is still running"
find B -name summary.json | sort > finished_before
for f in $(cat finished_before); do stat -c '%Y.%y' "$f"; done > times_before
[ -s finished_before ] || fail "nothing finished before the kill"
"$nanoattn" study s.yaml --out B > b2.log 2>&1 || { cat b2.log; fail "study B (resumed)"; }
for f in $(cat finished_before); do stat -c '%Y.%y' "$f"; done > times_after
cmp -s times_before times_after || fail "a finished run was run again"
mask() { sed '/<!-- timing:begin -->/,/<!-- timing:end -->/d; s/--out [AB]/--out X/' "$1"; }
diff <(mask A/report.md) <(mask B/report.md) > /dev/null || { diff <(mask A/report.md) <(mask B/report.md) | head; fail "report.md differs"; }
/usr/bin/python3 - A/report.json B/report.json <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for x in (a, b):
    x.pop("timing", None)
    x["study"]["command"] = x["study"]["command"].replace("--out B", "--out A")
if a != b:
    for k in a:
        if a[k] != b.get(k):
            print("differs:", k, json.dumps(a[k])[:300], json.dumps(b.get(k))[:300])
    raise SystemExit("report.json differs beyond timing")
PY
echo "resumed after kill -9: $(wc -l < finished_before) finished runs kept, same report"

# One study process per folder; SIGTERM stops the running jobs (each keeps a checkpoint) and
# says how to go on.
"$nanoattn" study s.yaml --out E > e1.log 2>&1 &
pid=$!
for ((i = 0; i < 300; i++)); do [ -d E/tiny/tune/lr0.005-p0.0 ] && break; sleep 0.1; done
if "$nanoattn" study s.yaml --out E > e2.log 2>&1; then fail "a second study on the same folder ran"; fi
grep -q "folder .*E is in use by another nanoattn process (pid $pid)" e2.log || { cat e2.log; fail "lock message"; }
kill -TERM $pid
code=0
wait $pid || code=$?
[ $code = 143 ] || { cat e1.log; fail "SIGTERM gave exit code $code, expected 143"; }
grep -q "stopped by SIGTERM .*run the same command again to continue" e1.log || { cat e1.log; fail "stop message"; }
pgrep -f "$work/E" > /dev/null && fail "a job of the stopped study is still running"

# Bad study files: the file, line and what to do.
sed 's/^jobs: 2/jobs: 2\nbogus: 1/' s.yaml > bad.yaml
if "$nanoattn" study bad.yaml --out C > c.log 2>&1; then fail "unknown key accepted"; fi
grep -q "bad.yaml:.*unknown key 'bogus'" c.log || { cat c.log; fail "unknown key message"; }
sed 's/tolerance: 0.02/tolerance: 0.0/' s.yaml > tight.yaml
if "$nanoattn" study tight.yaml --out D > d.log 2>&1; then fail "impossible tolerance accepted"; fi
grep -q "outside match.tolerance" d.log || { cat d.log; fail "tolerance message"; }
echo "study: ok"

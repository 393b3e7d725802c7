#!/usr/bin/env bash
# Prediction dumps and `nanoattn kl` end to end: an experiment whose linear run has
# `compare_to: softmax` (dumps in the run folders, a KL column in the table), `eval --dump` in
# float32 and float16, `kl --out --json`, every file read by h5dump and checked in numpy by
# check_dump.py (Debian's h5py), and each kind of bad input with its message.
# Usage: cli_dump_kl.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
STEPS=30 source "$here/tiny_experiment.sh"
cd "$work"
cat >> exp.yaml <<'YAML'
runs:
  - name: softmax
    model: {blocks: [{token_embedding: {}}, {positional: {}}, {residual: {body: [{attention: {plugin: softmax, n_heads: 2}}]}}, {residual: {norm_name: ln2, body: [{feed_forward: {mult: 2}}]}}, {layernorm: {name: ln_f}}, {lm_head: {tied_to: tok}}]}
  - name: linear
    compare_to: softmax
YAML
"$nanoattn" run exp.yaml --out out > run.log 2>&1 || { cat run.log; exit 1; }
for f in softmax/preds_val.h5 linear/preds_val.h5 linear/kl_vs_softmax.h5; do
  [ -s "out/tiny/$f" ] || { echo "FAIL: out/tiny/$f missing"; cat run.log; exit 1; }
done
grep -q "KL vs softmax (bits/char)" run.log || { echo "FAIL: no KL column"; cat run.log; exit 1; }
kl_cell=$(awk -F, 'NR == 3 { print $13 "," $14 }' out/tiny/summary.csv)
[[ "$kl_cell" =~ ^softmax,[0-9] ]] || { echo "FAIL: summary.csv KL cell '$kl_cell'"; cat out/tiny/summary.csv; exit 1; }
echo "table: $(grep '| linear' run.log)"
# --resume on finished runs: a missing dump is made again from the final checkpoint.
rm out/tiny/softmax/preds_val.h5
"$nanoattn" run exp.yaml --out out --resume > resume.log 2>&1 || { cat resume.log; exit 1; }
grep -q "writing out/tiny/softmax/preds_val.h5 from out/tiny/softmax/checkpoint.h5" resume.log \
  && [ "$(grep '| linear' resume.log)" = "$(grep '| linear' run.log)" ] || { echo "FAIL: resume"; cat resume.log; exit 1; }
# eval.dump: the final val and test evaluations of every run, here in float16.
"$nanoattn" run exp.yaml --out out4 --only softmax --set eval.dump=true --set eval.dump_dtype=float16 > /dev/null 2>&1
for split in val test; do
  h5dump -H out4/tiny/softmax/preds_$split.h5 | grep -A1 'DATASET "logprobs"' | grep -q "16-bit little-endian floating-point" \
    || { echo "FAIL: eval.dump of $split"; exit 1; }
done

# eval --dump (float32 and float16) and kl, then everything through h5dump and numpy.
ck_a=out/tiny/softmax/checkpoint.h5 ck_b=out/tiny/linear/checkpoint.h5
"$nanoattn" eval "$ck_a" --dump a.h5 > /dev/null
"$nanoattn" eval "$ck_b" --dump b.h5 > /dev/null
"$nanoattn" eval "$ck_a" --dump a16.h5 --dump-dtype float16 > /dev/null
"$nanoattn" kl a.h5 b.h5 --out kl.h5 --json > kl.json
"$nanoattn" kl a.h5 b.h5 --top 3 > kl.txt
grep -q "KL(A||B)" kl.txt && grep -q "largest JS divergence" kl.txt || { echo "FAIL: kl text"; cat kl.txt; exit 1; }
# The run's own dump is the same model on the same split: eval --dump gives the same numbers.
"$nanoattn" kl out/tiny/softmax/preds_val.h5 a.h5 --json | grep -A1 '"kl_ab"' | grep -q '"max": 0.0' \
  || { echo "FAIL: the run's dump and eval --dump differ"; exit 1; }
for f in "$ck_a" "$ck_b" out/tiny/*/preds_val.h5 out/tiny/linear/kl_vs_softmax.h5 a.h5 b.h5 a16.h5 kl.h5; do
  h5dump -H "$f" > /dev/null || { echo "FAIL: h5dump -H $f"; exit 1; }
done
h5dump -H a16.h5 | grep -A1 'DATASET "logprobs"' | grep -q "16-bit little-endian floating-point" \
  || { echo "FAIL: float16 type"; h5dump -H a16.h5; exit 1; }
/usr/bin/python3 "$here/check_dump.py" a.h5 b.h5 a16.h5 kl.h5 kl.json "$ck_a"
ls -a out/tiny/softmax out/tiny/linear . | grep -q "tmp-" && { echo "FAIL: temporary files left"; exit 1; }

# Bad input: each fails with exit code 1 and a message naming the file and the problem.
failures=0
expect_error() {  # expect_error "<what>" "<expected text>" command...
  local what=$1 expected=$2
  shift 2
  if "$@" > out.txt 2> err.txt; then
    echo "FAIL ($what): succeeded"; failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$expected" err.txt; then
    echo "FAIL ($what): expected '$expected' in:"; cat err.txt; failures=$((failures + 1)); return
  fi
  echo "ok ($what): $(head -c 400 err.txt)"
}
"$nanoattn" eval "$ck_a" --split train --dump train.h5 > /dev/null
"$nanoattn" eval "$ck_b" --seq-len 16 --dump short.h5 > /dev/null
/usr/bin/python3 - <<'PY'
import shutil, h5py
shutil.copy("b.h5", "vocab.h5")
with h5py.File("vocab.h5", "r+") as f:
    v = f["vocab"][()]
    v[3] = b"Z"
    del f["vocab"]
    f.create_dataset("vocab", data=v, dtype=h5py.string_dtype())
shutil.copy("b.h5", "tokens.h5")
with h5py.File("tokens.h5", "r+") as f:
    f["tokens"][100] = (f["tokens"][100] + 1) % f.attrs["vocab_size"]
shutil.copy("b.h5", "nonll.h5")
with h5py.File("nonll.h5", "r+") as f:
    del f["nll"]
PY
head -c 20000 a.h5 > truncated.h5
echo "not a dump" > text.h5
expect_error "different lengths" "a.h5 and train.h5: not dumps of the same tokens: 1509 vs 12086 tokens (split val vs train" "$nanoattn" kl a.h5 train.h5
expect_error "different windows" "a.h5 and short.h5: not dumps of the same tokens: they differ at token index 16 of 1509: context position 16 vs 0 (windows of 32 vs 16)" \
  "$nanoattn" kl a.h5 short.h5
expect_error "different vocabularies" "a.h5 and vocab.h5: different vocabularies: 15 vs 15 tokens, the first differs at id 3: 'a' vs 'Z'; only in a.h5: 'a'; only in vocab.h5: 'Z'" \
  "$nanoattn" kl a.h5 vocab.h5
expect_error "different tokens" "they differ at token index 100 of 1509: input token" "$nanoattn" kl a.h5 tokens.h5
expect_error "truncated file" "truncated.h5: an HDF5 file that HDF5 cannot open: it is truncated or corrupt" \
  "$nanoattn" kl truncated.h5 b.h5
expect_error "not HDF5" "text.h5: not an HDF5 file" "$nanoattn" kl a.h5 text.h5
expect_error "missing dataset" "nonll.h5: dataset /nll is missing: the dump is incomplete or damaged" \
  "$nanoattn" kl a.h5 nonll.h5
expect_error "a checkpoint is not a dump" "a nanoattn checkpoint, not a prediction dump" "$nanoattn" kl "$ck_a" b.h5
expect_error "missing dump" "absent.h5: no such file" "$nanoattn" kl a.h5 absent.h5
expect_error "dump into a missing folder" "nowhere/p.h5: cannot write the dump" "$nanoattn" eval "$ck_a" --dump nowhere/p.h5
sed 's/compare_to: softmax/compare_to: sofmax/' exp.yaml > badref.yaml
expect_error "compare_to names no run" "badref.yaml:24:17: run 'linear': compare_to: no run is named 'sofmax'; the runs are: softmax, linear" \
  "$nanoattn" run badref.yaml --out out2
expect_error "--only without the reference" "run 'linear' compares to 'softmax', which --only leaves out" \
  "$nanoattn" run exp.yaml --out out3 --only linear
# A top-k teacher dump of the training split (h5py: the k likeliest, sorted, the rest bucket
# recoverable), refused by kl, and a student distilled from it (train.distill).
"$nanoattn" eval "$ck_a" --split train --dump teacher_top4.h5 --top-k 4 > /dev/null
/usr/bin/python3 - <<'PY'
import h5py, numpy as np
with h5py.File("teacher_top4.h5", "r") as f, h5py.File("train.h5", "r") as g:
    assert f.attrs["top_k"] == 4 and f.attrs["format_version"] == 2 and "logprobs" not in f
    ids, lp, full = f["topk_ids"][()], f["topk_logprobs"][()], g["logprobs"][()]
    assert ids.shape == lp.shape == (full.shape[0], 4)
    assert np.array_equal(np.take_along_axis(full, ids, 1), lp) and (np.diff(lp, axis=1) <= 0).all()
    rest = 1 - np.exp(lp.astype(np.float64)).sum(1)
    others = np.exp(full.astype(np.float64)).sum(1) - np.exp(lp.astype(np.float64)).sum(1)
    assert np.abs(rest - others).max() < 1e-5, np.abs(rest - others).max()
print("top-k dump ok")
PY
expect_error "kl of a top-k dump" "teacher_top4.h5: a top-k dump (top_k = 4: only each token's 4 likeliest log-probabilities), but nanoattn kl needs full distributions" \
  "$nanoattn" kl train.h5 teacher_top4.h5
expect_error "--top-k without --dump" "--top-k: only applies to a dump" "$nanoattn" eval "$ck_a" --top-k 4
expect_error "distill without aligned windows" "train.distill needs train.windows: aligned" \
  "$nanoattn" run exp.yaml --out out5 --only softmax --set 'train.distill={teacher: teacher_top4.h5, top_k: 4}'
"$nanoattn" run exp.yaml --out out5 --only softmax --set train.steps=6 --set train.windows=aligned --set log.every=2 \
  --set 'train.distill={teacher: teacher_top4.h5, top_k: 4}' > distill.log 2>&1 || { cat distill.log; exit 1; }
grep -q "distilling from the teacher dump .*/teacher_top4.h5 (run softmax, step 30, top 4)" distill.log && head -1 out5/tiny/softmax/metrics.csv | grep -q ",ce$" \
  || { echo "FAIL: distilled run"; cat distill.log out5/tiny/softmax/metrics.csv; failures=$((failures + 1)); }
expect_error "a teacher that is the run's own checkpoint" "checkpoint.h5: is the same file as the input" \
  "$nanoattn" run exp.yaml --out out5 --only softmax --set train.windows=aligned --overwrite \
  --set "train.distill={teacher: $PWD/out5/tiny/softmax/checkpoint.h5}"
[ ! -e kl_failed.h5 ] || { echo "FAIL: kl_failed.h5"; exit 1; }
expect_error "no --out on failure" "they differ at token index 100" "$nanoattn" kl a.h5 tokens.h5 --out kl_failed.h5
[ ! -e kl_failed.h5 ] && ! ls -a | grep -q "kl_failed.h5.tmp" || { echo "FAIL: a failed kl left a file"; failures=$((failures + 1)); }

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "dumps and kl ok"

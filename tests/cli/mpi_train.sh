#!/usr/bin/env bash
# Data-parallel training under Open MPI: `mpirun -np 2 nanoattn run` gives bitwise the
# checkpoint (parameters and optimizer state) and the training metrics of one process with the
# same train.micro_batches, with dropout on; a run stopped by one process continues under two
# ranks (and the reverse) to the same bits; distillation too; K that 2 ranks cannot share, or that does not divide
# the batch, is refused naming train.micro_batches. Exit 77 (skipped) without mpirun.
# Usage: mpi_train.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
command -v mpirun > /dev/null || { echo "SKIP: no mpirun (tools/setup.sh installs openmpi-bin)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
STEPS=12 source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
# Dropout after the positional embedding: its masks must follow the micro-batch, not the rank.
sed -i 's/^    - positional: {kind: learned}$/&\n    - dropout: {p: 0.1}/' exp.yaml
grep -q "dropout: {p: 0.1}" exp.yaml
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2)
fail() { echo "FAIL: $*"; exit 1; }
run1() { local out=$1; shift; "$nanoattn" run exp.yaml --out "$out" --set train.micro_batches=2 "$@" > "$out.log" 2>&1 \
           || { cat "$out.log"; fail "nanoattn run --out $out $*"; }; }
run2() { local out=$1; shift; "${mpi[@]}" "$nanoattn" run exp.yaml --out "$out" --set train.micro_batches=2 "$@" \
           > "$out.log" 2>&1 || { cat "$out.log"; fail "mpirun -np 2 nanoattn run --out $out $*"; }; }
same() {  # the checkpoints of two run folders: /params and /optim bitwise (h5diff, exact), step and cursor
  local a=$1/tiny/main/checkpoint.h5 b=$2/tiny/main/checkpoint.h5 g
  for g in /params /optim; do
    h5diff -q "$a" "$b" $g $g || { h5diff -r "$a" "$b" $g $g | head -20; fail "$g of $1 and $2 differ"; }
  done
  for at in step data_cursor optimizer_steps; do
    [ "$(h5dump -a /$at "$a" | grep '(0)')" = "$(h5dump -a /$at "$b" | grep '(0)')" ] || fail "/$at of $1 and $2 differ"
  done
}

# (a) one process vs two ranks.
run1 one
run2 two
same one two
/usr/bin/python3 - one/tiny/main two/tiny/main <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(f"{d}/metrics.jsonl")] for d in sys.argv[1:])
keys = ("step", "loss", "grad_norm", "lr", "tokens", "val_bpc", "test_bpc")
pick = lambda rs: [{k: r[k] for k in keys if k in r} for r in rs]
assert pick(a) == pick(b), (pick(a), pick(b))
sa, sb = (json.load(open(f"{d}/summary.json")) for d in sys.argv[1:])
assert sa["provenance"]["ranks"] == 1 and sb["provenance"]["ranks"] == 2, (sa["provenance"], sb["provenance"])
assert sa["val_bpc"] == sb["val_bpc"] and sa["test_bpc"] == sb["test_bpc"], (sa, sb)
print("metrics equal:", len(a), "records; val bpc", sa["val_bpc"])
PY
[ "$(ls two/tiny/main)" = "$(ls one/tiny/main)" ] || fail "the run folders hold other files: $(ls one/tiny/main) vs $(ls two/tiny/main)"
# The one-process run is not the K = 1 run: micro-batches really change the numerics (dropout).
"$nanoattn" run exp.yaml --out k1 > k1.log 2>&1 || { cat k1.log; fail "K = 1"; }
if h5diff -q one/tiny/main/checkpoint.h5 k1/tiny/main/checkpoint.h5 /params /params; then
  fail "micro_batches 2 gave the parameters of micro_batches 1"
fi

# (b) stopped by the time guard after step 1 (one process), resumed by two ranks; and the reverse.
run1 a --set train.time_limit=0.000001
grep -q '"finished": false' a/tiny/main/summary.json || fail "the time guard did not stop the one-process run"
run2 a --resume
same one a
run2 b --set train.time_limit=0.000001
grep -q '"finished": false' b/tiny/main/summary.json || fail "the time guard did not stop the two-rank run"
run1 b --resume
same one b
echo "stopped and resumed across 1 and 2 ranks: bitwise the uninterrupted run"

# Distillation from a live teacher (top-k rows): each rank predicts its own micro-batches' rows.
distill=(--set train.windows=aligned --set "train.distill.teacher=$work/one/tiny/main/checkpoint.h5"
         --set train.distill.alpha=0.5 --set train.distill.top_k=3)
run1 d1 "${distill[@]}"
run2 d2 "${distill[@]}"
same d1 d2
[ "$(grep -o '"ce": [^,]*' d1/tiny/main/metrics.jsonl)" = "$(grep -o '"ce": [^,]*' d2/tiny/main/metrics.jsonl)" ] \
  || fail "the distillation ce differs between 1 and 2 ranks"

# (c) refusals, naming the key.
if "${mpi[@]}" "$nanoattn" run exp.yaml --out c1 > c1.log 2>&1; then fail "K = 1 on 2 ranks was accepted"; fi
grep -q "set train.micro_batches to a multiple of 2" c1.log || { cat c1.log; fail "no K % N message"; }
[ ! -e c1/tiny/main/checkpoint.h5 ] || fail "a refused run wrote a checkpoint"
if "$nanoattn" run exp.yaml --out c2 --set train.micro_batches=3 > c2.log 2>&1; then fail "K = 3 of B = 4 accepted"; fi
grep -q "train.micro_batches 3 does not divide train.batch_size 4" c2.log || { cat c2.log; fail "no B % K message"; }
echo "mpi_train: ok"

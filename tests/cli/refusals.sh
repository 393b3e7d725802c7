#!/usr/bin/env bash
# Inputs that used to be accepted and gave a crash or a wrong result, each now refused with exit
# code 1 and a message naming the key, file or token, with nothing written:
#   sizes that cannot fit in memory (a batch, a repeat, an evaluation), checked before allocating;
#   a corpus that is a compressed or binary file (unless data.binary: true);
#   dumps with a target id outside the vocabulary or a non-finite log-probability (kl);
#   --resume of a finished run whose settings changed (the changed keys are named).
# Usage: refusals.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
STEPS=4 source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
failures=0

# expect_error "<what>" "<expected text>" command...: exit code 1 and the text on stderr.
expect_error() {
  local what=$1 expected=$2 rc=0
  shift 2
  "$@" > out.txt 2> err.txt || rc=$?
  if [ $rc -ne 1 ]; then
    echo "FAIL ($what): exit code $rc, want 1"; cat err.txt; failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$expected" err.txt; then
    echo "FAIL ($what): expected '$expected' in:"; cat err.txt; failures=$((failures + 1)); return
  fi
  echo "ok ($what): $(head -c 300 err.txt)"
}

# Sizes: refused with the estimate next to the machine's memory, before anything is allocated.
expect_error "batch too large" "a training step of train.batch_size 1000000000 x train.seq_len 32 tokens needs about" \
  "$nanoattn" run exp.yaml --out big --set train.batch_size=1000000000
grep -q "this machine has" err.txt || { echo "FAIL: the machine's memory is not named"; failures=$((failures + 1)); }
[ ! -e big ] || { echo "FAIL: a refused run wrote $work/big"; failures=$((failures + 1)); }
expect_error "repeat too large" "repeat: n = 100000000 copies of" \
  "$nanoattn" run exp.yaml --out big --set model.blocks.2.repeat.n=100000000

# A compressed or binary corpus.
gzip -c tiny.txt > tiny.gz
sed 's/corpus: tiny.txt/corpus: tiny.gz/' exp.yaml > gz.yaml
expect_error "gzip corpus" "the corpus looks like a gzip file (gunzip it), not text" "$nanoattn" run gz.yaml --out gz
{ head -c 3000 tiny.txt; printf 'a\0b'; cat tiny.txt; } > nul.txt
sed 's/corpus: tiny.txt/corpus: nul.txt/' exp.yaml > nul.yaml
expect_error "NUL byte in the corpus" "the corpus holds a NUL byte at offset 3001" "$nanoattn" run nul.yaml --out nul
sed 's/corpus: nul.txt,/corpus: nul.txt, binary: true,/' nul.yaml > nul_ok.yaml
"$nanoattn" run nul_ok.yaml --out nul_ok > ok.log 2>&1 || { echo "FAIL: data.binary: true was refused"; cat ok.log; failures=$((failures + 1)); }

# --resume of a finished run with other settings names what changed.
"$nanoattn" run exp.yaml --out done > done.log 2>&1 || { cat done.log; exit 1; }
expect_error "finished run, changed settings" "finished with other settings (train.steps: 4 -> 6, train.lr: 0.01 -> 0.02)" \
  "$nanoattn" run exp.yaml --out done --resume --set train.steps=6 --set train.lr=0.02
"$nanoattn" run exp.yaml --out done --resume > same.log 2>&1 && grep -q "already finished" same.log ||
  { echo "FAIL: an unchanged finished run is not skipped"; cat same.log; failures=$((failures + 1)); }

# kl of damaged dumps: an id outside the vocabulary, a NaN log-probability.
ck=done/tiny/main/checkpoint.h5
"$nanoattn" eval "$ck" --dump a.h5 > /dev/null 2>&1
for damage in target nan; do
  cp a.h5 "$damage.h5"
  /usr/bin/python3 - "$damage" <<'PY'
import sys, h5py, numpy as np
damage = sys.argv[1]
with h5py.File(damage + ".h5", "r+") as f:
    if damage == "target":
        f["targets"][5] = 1000
    else:
        row = f["logprobs"][7]
        row[2] = np.nan
        f["logprobs"][7] = row
PY
done
expect_error "kl: target id outside the vocabulary" "dataset /targets holds 1000 at token index 5, outside the vocabulary" \
  "$nanoattn" kl a.h5 target.h5
expect_error "kl: NaN log-probability" "dataset /logprobs holds nan at token index 7 (symbol 2)" "$nanoattn" kl nan.h5 a.h5

[ $failures -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "all refusals as expected"

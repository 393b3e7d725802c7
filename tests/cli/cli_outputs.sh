#!/usr/bin/env bash
# What nanoattn writes, checked before it writes: an output that is one of the command's inputs
# (also through a hard or symbolic link), a second process writing a folder another one is
# writing, and an output path that cannot be a folder or is not writable. Each is refused with
# exit code 1 and a message naming the paths and what to do, and the inputs stay byte for byte.
# A lock left by a killed process does not block. Usage: cli_outputs.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
holder=""
cleanup() {
  if [ -n "$holder" ]; then kill -9 "$holder" 2> /dev/null || true; fi
  chmod -R u+w "$work" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
STEPS=2 source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
failures=0

# expect_error "<what>" "<expected text>" command...: exit code 1 (not a crash, not "internal
# error" with exit code 2) and the text on stderr.
expect_error() {
  local what=$1 expected=$2 rc=0
  shift 2
  "$@" > out.txt 2> err.txt || rc=$?
  if [ "$rc" -ne 1 ]; then
    echo "FAIL ($what): exit code $rc, expected 1"; cat err.txt; failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$expected" err.txt; then
    echo "FAIL ($what): expected '$expected' in:"; cat err.txt; failures=$((failures + 1)); return
  fi
  echo "ok ($what): $(head -c 300 err.txt)"
}
same() {  # same <file> <copy>: the file is byte for byte its copy
  cmp -s "$1" "$2" || { echo "FAIL: $1 changed"; failures=$((failures + 1)); }
}

"$nanoattn" run exp.yaml --out out > run.log 2>&1 || { cat run.log; exit 1; }
cp out/tiny/main/checkpoint.h5 ck.h5
"$nanoattn" eval ck.h5 --dump a.h5 > /dev/null
"$nanoattn" eval ck.h5 --dump b.h5 --dump-dtype float16 > /dev/null
cp ck.h5 ck.orig && cp a.h5 a.orig && cp b.h5 b.orig && cp tiny.txt tiny.orig && cp exp.yaml exp.orig
ln ck.h5 hard.h5
ln -s ck.h5 soft.h5

# 1. Outputs that are inputs.
expect_error "eval --dump onto its checkpoint" \
  "ck.h5: is the same file as the input ck.h5: writing it would destroy that input, so nothing was done: give --dump another path" \
  "$nanoattn" eval ck.h5 --dump ck.h5
expect_error "eval --dump onto a hard link of its checkpoint" "hard.h5: is the same file as the input ck.h5" \
  "$nanoattn" eval ck.h5 --dump hard.h5
expect_error "eval --dump onto a symbolic link to its checkpoint" "soft.h5: is the same file as the input ck.h5" \
  "$nanoattn" eval ck.h5 --dump soft.h5
expect_error "eval --dump onto its corpus" "tiny.txt: is the same file as the input $work/tiny.txt" \
  "$nanoattn" eval ck.h5 --dump tiny.txt
expect_error "kl --out onto dump A" "a.h5: is the same file as the input a.h5: writing it would destroy that input" \
  "$nanoattn" kl a.h5 b.h5 --out a.h5
expect_error "kl --out onto dump B, spelled another way" "./b.h5: is the same file as the input b.h5" \
  "$nanoattn" kl a.h5 b.h5 --out ./b.h5
mkdir -p linked/tiny/main
ln exp.yaml linked/tiny/main/config.yaml
expect_error "run: a run folder's config.yaml is the experiment file" \
  "linked/tiny/main/config.yaml: is the same file as the input exp.yaml" "$nanoattn" run exp.yaml --out linked
mkdir -p corpus_in/tiny/main
cp tiny.txt corpus_in/tiny/main/metrics.csv
cp tiny.txt corpus_in.orig
sed "s|corpus: tiny.txt|corpus: corpus_in/tiny/main/metrics.csv|" exp.yaml > in_run.yaml
expect_error "run: a run folder's metrics.csv is the corpus" "corpus_in/tiny/main/metrics.csv: is the same file as the input" \
  "$nanoattn" run in_run.yaml --out corpus_in
same ck.h5 ck.orig; same a.h5 a.orig; same b.h5 b.orig; same tiny.txt tiny.orig; same exp.yaml exp.orig
same corpus_in/tiny/main/metrics.csv corpus_in.orig
[ ! -e linked/tiny/main/checkpoint.h5 ] && [ ! -e corpus_in/tiny/main/checkpoint.h5 ] \
  || { echo "FAIL: a refused run trained"; failures=$((failures + 1)); }

# 2. Output paths that cannot be written: a nanoattn error naming them, never an internal error.
echo "a file" > afile
expect_error "run --out is a regular file" "afile/tiny/main: afile is a file, not a folder: give --out a folder" \
  "$nanoattn" run exp.yaml --out afile
expect_error "run --out below a regular file" "afile/x/tiny/main: afile is a file, not a folder" \
  "$nanoattn" run exp.yaml --out afile/x
expect_error "eval --dump below a regular file" "afile/p.h5: cannot write the dump: folder afile is not a folder" \
  "$nanoattn" eval ck.h5 --dump afile/p.h5
expect_error "kl --out in a missing folder" "nowhere/kl.h5: cannot write the KL file: folder nowhere does not exist" \
  "$nanoattn" kl a.h5 b.h5 --out nowhere/kl.h5
if [ "$(id -u)" -ne 0 ]; then  # root writes anywhere: full_disk.sh covers read-only file systems
  mkdir -p locked/tiny/main && chmod 555 locked locked/tiny/main
  expect_error "run --out not writable" "locked/tiny/main: cannot write the run's files: folder locked/tiny/main is not writable" \
    "$nanoattn" run exp.yaml --out locked
  expect_error "run --out where no folder can be made" "locked/new/tiny/main: cannot create this folder" \
    "$nanoattn" run exp.yaml --out locked/new
  expect_error "eval --dump not writable" "locked/p.h5: cannot write the dump: folder locked is not writable" \
    "$nanoattn" eval ck.h5 --dump locked/p.h5
else
  echo "(running as root: unwritable folders are tested as read-only mounts by full_disk.sh)"
fi

# 3. One writer per folder. A long run holds its folder; everything else that would write there
# is refused, naming its PID. (Its time guard stops it if this script dies first.)
sed 's/steps: 2,/steps: 100000000,/' exp.yaml > long.yaml
"$nanoattn" run long.yaml --out live --set threads=1 --set train.time_limit=300 > live.log 2>&1 &
holder=$!
for _ in $(seq 600); do [ -e live/tiny/main/config.yaml ] && break; sleep 0.1; done
[ -e live/tiny/main/config.yaml ] || { echo "FAIL: the first run did not start"; cat live.log; exit 1; }
expect_error "a second run into the same folder" \
  "live/tiny/main: folder live/tiny/main is in use by another nanoattn process (pid $holder), which holds its lock live/tiny/main/.lock: wait for it to finish, or stop it (kill $holder)" \
  "$nanoattn" run long.yaml --out live --set train.time_limit=2
expect_error "a second run with --resume" "(pid $holder)" "$nanoattn" run long.yaml --out live --resume --set train.time_limit=2
expect_error "eval --dump into that folder" "live/tiny/main/preds_val.h5: folder live/tiny/main is in use by another nanoattn process (pid $holder)" \
  "$nanoattn" eval ck.h5 --dump live/tiny/main/preds_val.h5
expect_error "kl --out into that folder" "live/tiny/main/kl.h5: folder live/tiny/main is in use by another nanoattn process (pid $holder)" \
  "$nanoattn" kl a.h5 b.h5 --out live/tiny/main/kl.h5
[ ! -e live/tiny/main/preds_val.h5 ] && [ ! -e live/tiny/main/kl.h5 ] || { echo "FAIL: wrote into a locked folder"; failures=$((failures + 1)); }
kill -9 "$holder"
wait "$holder" 2> /dev/null || true
holder=""
# The killed run's lock file stays, with its PID: it must not block (the kernel dropped the lock).
[ -e live/tiny/main/.lock ] || echo "(no lock file left by the killed run)"
"$nanoattn" eval ck.h5 --dump live/tiny/main/p.h5 > /dev/null 2> err.txt || { echo "FAIL: a stale lock blocked eval"; cat err.txt; failures=$((failures + 1)); }
"$nanoattn" run long.yaml --out live --resume --set train.time_limit=1 > resume.log 2>&1 \
  || { echo "FAIL: a stale lock blocked run --resume"; cat resume.log; failures=$((failures + 1)); }
[ ! -e live/tiny/main/.lock ] || { echo "FAIL: the lock file stays after its holder finished"; failures=$((failures + 1)); }

[ "$failures" -eq 0 ] || { echo "$failures failures"; exit 1; }
echo "outputs checked before writing"

#!/usr/bin/env bash
# kill -9 of a training run, then --resume: the checkpoint was readable every time we looked
# while it was being rewritten, and the resumed run continues from it to the end.
# Usage: kill_resume.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
pid=0
STEPS=1200 CHECKPOINT_EVERY=2 source "$(dirname "$0")/tiny_experiment.sh"
ck=$work/out/tiny/main/checkpoint.h5

step_of() { h5dump -a /step "$1" | sed -n 's/.*(0): \([0-9]*\).*/\1/p'; }

"$nanoattn" run "$work/exp.yaml" --out "$work/out" > "$work/first.log" 2>&1 &
pid=$!
reads=0
step=0
while kill -0 $pid 2>/dev/null && [ "$step" -lt 200 ]; do
  if [ -e "$ck" ]; then
    step=$(step_of "$ck") || { echo "FAIL: $ck was unreadable while training (read $reads)"; exit 1; }
    [ -n "$step" ] || { echo "FAIL: no step attribute in $ck"; exit 1; }
    reads=$((reads + 1))
  fi
  sleep 0.02
done
kill -9 $pid
wait $pid 2>/dev/null || true
kill -0 $pid 2>/dev/null && { echo "FAIL: the run survived kill -9"; exit 1; }
[ "$step" -ge 200 ] || { echo "FAIL: the run ended before step 200"; cat "$work/first.log"; exit 1; }
saved=$(step_of "$ck")
h5dump -H "$ck" > /dev/null || { echo "FAIL: $ck unreadable after kill -9"; exit 1; }
echo "read the checkpoint $reads times while it was rewritten every 2 steps; killed after step $saved"
[ "$reads" -ge 20 ] || { echo "FAIL: only $reads reads: the test did not watch the file long enough"; exit 1; }

# Without --resume the folder is protected.
if "$nanoattn" run "$work/exp.yaml" --out "$work/out" > "$work/refused.log" 2>&1; then
  echo "FAIL: a second run without --resume overwrote the first"; exit 1
fi
grep -q "already holds a checkpoint from an earlier run: pass --resume" "$work/refused.log"

"$nanoattn" run "$work/exp.yaml" --out "$work/out" --resume > "$work/resume.log" 2>&1 || {
  cat "$work/resume.log"; exit 1; }
grep -q "resuming at step $saved" "$work/resume.log" || { echo "FAIL: did not resume at $saved"; cat "$work/resume.log"; exit 1; }
[ "$(step_of "$ck")" = 1200 ] || { echo "FAIL: the resumed run did not reach step 1200"; exit 1; }
ls -a "$work/out/tiny/main" | grep -q tmp && { echo "FAIL: a temporary file was left behind"; exit 1; }
grep -q '"finished": true' "$work/out/tiny/main/summary.json"
echo "resumed at step $saved and finished at step 1200"

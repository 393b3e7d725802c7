#!/usr/bin/env bash
# kill -9 of a training run, then --resume: the checkpoint was readable every time we looked
# while it was being rewritten, and the resumed run continues from it to the end.
#
# Nothing here depends on how fast the machine is: the watcher freezes the run (SIGSTOP) on
# each event it observes, a checkpoint write begun (the temp file appears) or finished (a new
# file renamed over the checkpoint), reads the checkpoint while the run stands still, and lets
# it go on (SIGCONT). So the run moves ahead by about one checkpoint per look, and the kill -9
# comes after WRITES observed writes, with a write begun when the watcher saw one.
# Usage: kill_resume.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
pid=0
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
STEPS=300 CHECKPOINT_EVERY=2 source "$(dirname "$0")/tiny_experiment.sh"
WRITES=12
run_dir=$work/out/tiny/main
ck=$run_dir/checkpoint.h5
seen=$work/seen.h5  # a hard link to the checkpoint file last read: `-ef` tells when it was replaced

step_of() { h5dump -a /step "$1" | sed -n 's/.*(0): \([0-9]*\).*/\1/p'; }
fail() { echo "FAIL: $*"; cat "$work/first.log"; exit 1; }

"$nanoattn" run "$work/exp.yaml" --out "$work/out" > "$work/first.log" 2>&1 &
pid=$!
tmp=$run_dir/.checkpoint.h5.tmp-$pid

# The run's state letter from /proc (R, S, D, T: stopped, Z: ended), or "gone".
run_state() {
  local line
  read -r line 2>/dev/null < "/proc/$pid/stat" || { state=gone; return 1; }
  line=${line##*) }
  state=${line%% *}
}

# Waits with shell builtins only (no process to start), so the run is frozen within
# microseconds of the event; returns once the run has stopped. Sets event: "begun" (only
# looked for when $1 is "begun"), "replaced" or "ended".
next_event() {
  event=ended
  while run_state && [ $state != Z ]; do
    if [ "$1" = begun ] && [ -e "$tmp" ]; then event=begun; break; fi
    if [ -e "$ck" ] && ! [ "$ck" -ef "$seen" ]; then event=replaced; break; fi
  done
  [ $event != ended ] || return 0
  kill -STOP $pid
  while run_state && [ $state != T ]; do :; done
}

# Looks for a write begun, then for its end, and so on; the kill comes on a write begun after
# WRITES writes (or after a rename, if a whole write keeps slipping between two looks).
reads=0 writes=0 last=0 want=begun
while true; do
  next_event $want
  [ $event != ended ] || fail "the run ended after $writes checkpoint writes, before the watcher was done"
  if [ -e "$ck" ]; then
    step=$(step_of "$ck") || fail "$ck was unreadable while training (a write $event; read $reads)"
    [ -n "$step" ] || fail "no step attribute in $ck"
    [ "$step" -ge "$last" ] || fail "the checkpoint went back from step $last to $step"
    last=$step reads=$((reads + 1))
    ln -f "$ck" "$seen"
  fi
  if [ $event = replaced ]; then writes=$((writes + 1)) want=begun; else want=replaced; fi
  [ $writes -ge $WRITES ] && [ $event = begun ] && break
  [ $writes -ge $((WRITES * 4)) ] && break
  kill -CONT $pid
done
kill -9 $pid  # while it is stopped, on the event just observed
wait $pid 2>/dev/null || true
kill -0 $pid 2>/dev/null && fail "the run survived kill -9"
saved=$(step_of "$ck") || fail "$ck unreadable after kill -9"
h5dump -H "$ck" > /dev/null || fail "$ck unreadable after kill -9"
[ "$saved" = "$last" ] || fail "the checkpoint holds step $saved, the watcher last read $last"
left=$([ -e "$tmp" ] && echo "its temporary file left behind" || echo "no temporary file")
echo "read the checkpoint $reads times over $writes writes (every 2 steps); killed at step $saved with a write $event, $left"

# Without --resume the folder is protected.
if "$nanoattn" run "$work/exp.yaml" --out "$work/out" > "$work/refused.log" 2>&1; then
  echo "FAIL: a second run without --resume overwrote the first"; exit 1
fi
grep -q "already holds a checkpoint from an earlier run: pass --resume" "$work/refused.log"

"$nanoattn" run "$work/exp.yaml" --out "$work/out" --resume > "$work/resume.log" 2>&1 || {
  cat "$work/resume.log"; exit 1; }
grep -q "resuming at step $saved" "$work/resume.log" || { echo "FAIL: did not resume at $saved"; cat "$work/resume.log"; exit 1; }
[ "$(step_of "$ck")" = 300 ] || { echo "FAIL: the resumed run did not reach step 300"; exit 1; }
ls -a "$run_dir" | grep -q tmp && { echo "FAIL: a temporary file was left behind"; exit 1; }
grep -q '"finished": true' "$run_dir/summary.json"
echo "resumed at step $saved and finished at step 300"

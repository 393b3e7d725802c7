#!/usr/bin/env bash
# SIGINT / SIGTERM in each phase: the command stops, removes its temporary files, keeps every
# earlier output as it was, and exits 130 / 143 with one line saying what was kept.
#
# Nothing here waits for a time: each signal is sent on an event the test observes (a checkpoint
# written, a temporary file created, the plugins loaded, the handlers installed), and each
# phase goes on far longer after its event than the watcher needs to send the signal (kl and
# eval accept either outcome, see stopped_or_whole). The signal is sent to the running process:
# one sent while it is stopped may be handled only later, by another thread.
# Usage: signals.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
pid=0
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
STEPS=100000 CHECKPOINT_EVERY=50 source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
fail() { echo "FAIL: $*"; cat err.txt 2>/dev/null; exit 1; }

# signal_on <signal> <test command> <nanoattn args...>: runs nanoattn in the background, waits
# until the test command succeeds (busy, shell builtins where possible), sends the signal; sets
# rc to its exit code.
signal_on() {
  local sig=$1 event=$2
  shift 2
  "$nanoattn" "$@" > out.txt 2> err.txt &
  pid=$!
  until eval "$event"; do kill -0 $pid 2>/dev/null || fail "ended before the event ($event): $*"; done
  kill -"$sig" $pid
  rc=0
  wait $pid || rc=$?
  echo "$sig on '$event': exit $rc: $(tail -n 1 err.txt)"
}
no_temp_files() { ! find "$1" -name '.*.tmp-*' | grep -q .; }
# nanoattn (not the shell's child before exec) catches SIGINT and SIGTERM (bits 2 and 15 of
# SigCgt): its handlers are in.
# (Shell builtins only: the command runs for a few milliseconds.)
handlers_in() {
  local comm key value
  read -r comm 2>/dev/null < /proc/$pid/comm && [ "$comm" = nanoattn ] || return 1
  while read -r key value; do
    [ "$key" = SigCgt: ] && return $(( (16#$value & 0x4002) != 0x4002 ))
  done 2>/dev/null < /proc/$pid/status
  return 1
}

# Training: stops after the step, writes a checkpoint, says how to resume.
signal_on TERM '[ -e out/tiny/main/checkpoint.h5 ]' run exp.yaml --out out
[ $rc -eq 143 ] || fail "training: exit $rc after SIGTERM, want 143"
grep -qE "stopped by SIGTERM at step [0-9]+ \(run main\); checkpoint .*checkpoint.h5 \(step [0-9]+\) is kept: continue with --resume" err.txt ||
  fail "training: no line saying what was kept"
step=$(sed -n 's/.*(step \([0-9]*\)) is kept.*/\1/p' err.txt)
[ "$(h5dump -a /step out/tiny/main/checkpoint.h5 | sed -n 's/.*(0): \([0-9]*\).*/\1/p')" = "$step" ] ||
  fail "training: the checkpoint does not hold step $step"
no_temp_files out || fail "training: temporary files left behind"

# Building the model (a long repeat): the plugins are loaded just before the blocks are built.
signal_on INT 'grep -q linear.so /proc/$pid/maps 2>/dev/null' run exp.yaml --out out2 --set model.blocks.2.repeat.n=20000
[ $rc -eq 130 ] || fail "building: exit $rc after SIGINT, want 130"
grep -q "stopped by SIGINT while building the model" err.txt || fail "building: not stopped while building"
[ ! -e out2/tiny/main/checkpoint.h5 ] || fail "building: a checkpoint was written"

# eval --dump over an earlier dump: the earlier file stays as it was, no partial file.
ck=out/tiny/main/checkpoint.h5
"$nanoattn" eval "$ck" --dump d.h5 > /dev/null 2>&1
cp d.h5 d_before.h5
# stopped_or_whole <what> <rc> <signal> <stop text> <file> <its copy from before>: the command was
# stopped (the earlier file as it was) or, if the signal was handled only after its last safe
# point (the kernel may hand it to another thread, which runs a moment later), it finished and
# the new file is whole; either way the exit code says a signal came and no temp file is left.
stopped_or_whole() {
  [ "$rc" -eq "$2" ] || fail "$1: exit $rc after $3, want $2"
  if grep -q "stopped by $3 while $4" err.txt; then
    cmp -s "$5" "$6" || fail "$1: the earlier $5 was changed"
  else
    grep -q "$3 came as the command finished: its outputs are complete" err.txt || fail "$1: no stop message"
    h5dump -H "$5" > /dev/null || fail "$1: the new $5 is not whole"
  fi
  no_temp_files . || fail "$1: temporary files left behind"
}

signal_on INT 'compgen -G ".d.h5.tmp-*" > /dev/null' eval "$ck" --dump d.h5 --batch-size 1 --mode recurrent
stopped_or_whole "eval --dump" 130 SIGINT evaluating d.h5 d_before.h5

# kl --out over an earlier file: the same. kl's output is written in a blink, so the signal comes
# as soon as the handlers are in; its first safe point is inside the comparison.
"$nanoattn" kl d.h5 d_before.h5 --out k.h5 > /dev/null 2>&1
cp k.h5 k_before.h5
signal_on TERM handlers_in kl d.h5 d_before.h5 --out k.h5
stopped_or_whole "kl --out" 143 SIGTERM "comparing the dumps" k.h5 k_before.h5
echo "every phase stopped cleanly"

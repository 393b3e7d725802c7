#!/usr/bin/env bash
# kill -9 of a training run at KILLS (20) seeded points, a --resume after each: after every kill
# the checkpoint left is readable in full (h5dump) and no older than the one before, and the
# resumed run ends with parameters and optimizer state bitwise equal (h5diff, exact) to an
# uninterrupted run of the same experiment.
#
# Each kill is planned from the seed (printed; pass it back to reproduce the plan) as one of:
#   start      as soon as the resumed session has restored (its config.yaml is rewritten)
#   begun N    on the first checkpoint write begun (its temporary file seen) after N renames
#   renamed N  right after the N-th rename of a new checkpoint over the old one (N >= 1)
#   final begun / final renamed   (the last kill) the final write, after the last training step
# Nothing depends on how fast the machine is: as in kill_resume.sh, the watcher waits for these
# events with shell builtins only, freezes the run (SIGSTOP) on each one it observes and counts
# observed events, never time or polls. A watcher descheduled across a whole write sees fewer
# writes than happened, so the kill lands later than planned: the printed steps say where each
# one landed, and every check holds wherever it lands.
# Usage: kill_random.sh <nanoattn binary> [SEED]   (or KILL_RANDOM_SEED=...; default 21)
set -euo pipefail
nanoattn=$1
seed=${2:-${KILL_RANDOM_SEED:-21}}
KILLS=${KILLS:-20}
work=$(mktemp -d)
pid=0
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
STEPS=100 CHECKPOINT_EVERY=2 source "$(dirname "$0")/tiny_experiment.sh"
echo "kill_random: seed $seed ($0 $nanoattn $seed reproduces the plan), $KILLS kills, 100 steps, a checkpoint every 2"
RANDOM=$seed

# The uninterrupted reference, on all cores (threads: 0). The killed run trains on one thread,
# which leaves a core to the watcher (any thread count gives bitwise the same numbers).
"$nanoattn" run "$work/exp.yaml" --out "$work/ref" > "$work/ref.log" 2>&1 ||
  { cat "$work/ref.log"; echo "FAIL: the uninterrupted reference run failed"; exit 1; }

run_dir=$work/out/tiny/main
ck=$run_dir/checkpoint.h5
cfg=$run_dir/config.yaml
seen=$work/seen.h5          # hard links to the files last seen: `-ef` tells when one was replaced
cfg_seen=$work/seen.yaml

step_of() { h5dump -a /step "$1" | sed -n 's/.*(0): \([0-9]*\).*/\1/p'; }
fail() { echo "FAIL: $*"; for f in "$work"/session*.log "$work"/final.log; do [ -e "$f" ] || continue; echo "== $f"; tail -5 "$f"; done; exit 1; }

# The run's state letter from /proc (R, S, D, T: stopped, Z: ended), or "gone".
run_state() {
  local line
  read -r line 2>/dev/null < "/proc/$pid/stat" || { state=gone; return 1; }
  line=${line##*) }
  state=${line%% *}
}

# Waits with shell builtins only for the next event and freezes the run on it; sets event:
# "started" (only looked for when $1 is started), "begun" (only when $1 is begun), "replaced",
# or "ended" (the process ended first).
next_event() {
  event=ended
  while run_state && [ $state != Z ]; do
    if [ "$1" = started ]; then
      if [ -e "$cfg" ] && ! [ "$cfg" -ef "$cfg_seen" ]; then event=started; break; fi
      continue
    fi
    if [ "$1" = begun ] && [ -e "$tmp" ]; then event=begun; break; fi
    if [ -e "$ck" ] && ! [ "$ck" -ef "$seen" ]; then event=replaced; break; fi
  done
  [ $event != ended ] || return 0
  kill -STOP $pid
  while run_state && [ $state != T ]; do :; done
}

# The plan: a kind and a count for each kill, all drawn here, from the seed alone.
kinds=() counts=() plan=""
for ((k = 1; k <= KILLS; k++)); do
  r=$((RANDOM % 8))
  if [ $k -eq "$KILLS" ]; then kind=final_renamed n=0; [ $((r % 2)) -eq 0 ] && kind=final_begun
  elif [ $r -eq 0 ] && [ $k -gt 1 ]; then kind=start n=0
  elif [ $r -lt 5 ]; then kind=begun n=$((RANDOM % 3))
  else kind=renamed n=$((1 + RANDOM % 2))
  fi
  kinds+=($kind) counts+=($n)
  plan+="$k: ${kind/_/ }$([[ $kind == begun || $kind == renamed ]] && echo " $n" || true), "
done
echo "plan: ${plan%, }"

saved=none  # the checkpoint's step after the last kill
early=""    # a copy of an early checkpoint: h5diff must tell it from the final one
summary=""
for ((k = 0; k < KILLS; k++)); do
  kind=${kinds[$k]} n=${counts[$k]}
  if [ -e "$ck" ]; then ln -f "$ck" "$seen"; else rm -f "$seen"; fi
  if [ -e "$cfg" ]; then ln -f "$cfg" "$cfg_seen"; else rm -f "$cfg_seen"; fi
  log=$work/session$((k + 1)).log
  "$nanoattn" run "$work/exp.yaml" --out "$work/out" --resume --set threads=1 > "$log" 2>&1 &
  pid=$!
  tmp=$run_dir/.checkpoint.h5.tmp-$pid
  renames=0 ck_step=${saved/none/0} want=begun
  [ $kind = start ] && want=started
  while true; do
    next_event $want
    [ $event = ended ] && break
    if [ $event = replaced ]; then
      renames=$((renames + 1))
      ln -f "$ck" "$seen"
      [[ $kind == final_* ]] && ck_step=$(step_of "$ck")
    fi
    case $kind in
      start) break ;;
      begun) [ $event = begun ] && [ $renames -ge "$n" ] && break ;;
      renamed) [ $event = replaced ] && [ $renames -ge "$n" ] && break ;;
      final_begun) [ $event = begun ] && [ "$ck_step" -ge 98 ] && break ;;  # 98: the last periodic write
      final_renamed) [ $event = replaced ] && [ "$ck_step" -ge 100 ] && break ;;
    esac
    [ $event = begun ] && want=replaced || want=begun
    kill -CONT $pid
  done
  if [ $event = ended ]; then
    # The run got to its end first (a plan longer than the run, or a watcher that missed many
    # writes): nothing is left to kill.
    wait $pid || fail "session $((k + 1)) failed"
    grep -q '"finished": true' "$run_dir/summary.json" || fail "session $((k + 1)) ended unfinished"
    echo "note: the run finished before kill $((k + 1)) ($kind $n) landed"
    saved=finished
    break
  fi
  kill -9 $pid  # while it is stopped, on the event just observed
  wait $pid 2>/dev/null || true
  kill -0 $pid 2>/dev/null && fail "the run survived kill -9"
  if [ "$saved" != none ]; then
    grep -q "resuming at step $saved" "$log" || [ $kind = start ] ||
      fail "session $((k + 1)) did not resume at step $saved"
  fi
  if [ -e "$ck" ]; then
    h5dump "$ck" > "$work/dump.txt" 2>&1 || fail "$ck unreadable after kill $((k + 1)) ($kind)"
    step=$(step_of "$ck")
    [ -n "$step" ] || fail "no step attribute in $ck"
    [ "$saved" = none ] || [ "$step" -ge "$saved" ] || fail "the checkpoint went back from step $saved to $step"
    if [ $kind = renamed ] || [ $kind = final_renamed ]; then
      [ "$saved" = none ] || [ "$step" -gt "$saved" ] || fail "kill $((k + 1)) after a rename, yet step $step"
    fi
    saved=$step
    [ -n "$early" ] || { cp "$ck" "$work/early.h5"; early=$saved; }
  fi
  summary+="$((k + 1)): ${kind/_/ } at step ${saved}$([ -e "$tmp" ] && echo " (+tmp)" || true), "
done
echo "killed (the checkpoint's step after each kill; +tmp: a write's temporary file was left): ${summary%, }"

# The final resume, to the end.
"$nanoattn" run "$work/exp.yaml" --out "$work/out" --resume --set threads=1 > "$work/final.log" 2>&1 ||
  { cat "$work/final.log"; fail "the final resume failed"; }
[ $saved = finished ] || grep -q "resuming at step $saved" "$work/final.log" ||
  fail "the final resume did not start at step $saved"
grep -q '"finished": true' "$run_dir/summary.json" || fail "no finished summary.json"
ls -a "$run_dir" | grep -q 'tmp-' && fail "a temporary file was left behind: $(ls -a "$run_dir")"

ref=$work/ref/tiny/main/checkpoint.h5
for a in step data_cursor optimizer_steps seed best_val_bpc; do
  x=$(h5dump -a /$a "$ref" | grep '(0)' || true) y=$(h5dump -a /$a "$ck" | grep '(0)' || true)
  [ -n "$x" ] && [ "$x" = "$y" ] || fail "attribute $a: $y after the kills, $x uninterrupted"
done
for g in /params /optim; do
  h5diff -q "$ref" "$ck" $g $g || { h5diff -r "$ref" "$ck" $g $g | head -20; fail "$g differs from the uninterrupted run"; }
done
# The comparison can fail: the checkpoint after the first kill is told apart.
if [ -n "$early" ] && h5diff -q "$ref" "$work/early.h5" /params /params; then
  fail "h5diff found no difference between the final parameters and those of step $early"
fi
echo "after $k kills and resumes: /params and /optim bitwise equal to the uninterrupted run's (h5diff)," \
     "and step, data_cursor, optimizer_steps, best_val_bpc equal; ${SECONDS} s"

#!/usr/bin/env bash
# TensorBoard after kill -9 and --resume, read by an independent reader that purges as
# TensorBoard does (tests/analysis/tb_events.py): each step shows once per tag, each tag has as
# many points as metrics.jsonl has records with its key, with the same values to float32. Then
# --overwrite leaves only the new run's event file.
#
# Not timing-dependent: the watcher freezes the run (SIGSTOP) when it sees a checkpoint write
# begin or a new checkpoint renamed in, and kills it only once the frozen run has logged steps
# after the checkpoint it would resume from (so there are points for the resume to purge).
# Usage: tensorboard_resume.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
here=$(cd "$(dirname "$0")" && pwd)
reader=$here/../analysis/tb_events.py
work=$(mktemp -d)
pid=0
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
STEPS=300 CHECKPOINT_EVERY=3 source "$here/tiny_experiment.sh"
# Every step logged (and to TensorBoard), an evaluation every 10 steps: val/ tags too.
sed -i 's/^log: .*/log: {every: 1, tensorboard: true}/; s/^eval: {every: 0,/eval: {every: 10,/' "$work/exp.yaml"
grep -q 'tensorboard: true' "$work/exp.yaml" && grep -q 'every: 10,' "$work/exp.yaml"
run_dir=$work/out/tiny/main
ck=$run_dir/checkpoint.h5
seen=$work/seen.h5  # hard link to the checkpoint last looked at: `-ef` tells when it was replaced

fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "== $f"; tail -5 "$f"; done; exit 1; }
step_of() { h5dump -a /step "$1" | sed -n 's/.*(0): \([0-9]*\).*/\1/p'; }
last_logged() { tail -n 1 "$run_dir/metrics.jsonl" | sed -n 's/^{"step":\([0-9]*\).*/\1/p'; }
alive() { local s; read -r s 2>/dev/null < "/proc/$pid/stat" || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }
stopped() { local s; read -r s 2>/dev/null < "/proc/$pid/stat" || return 1; s=${s##*) }; [ "${s%% *}" = T ]; }

"$nanoattn" run "$work/exp.yaml" --out "$work/out" > "$work/first.log" 2>&1 &
pid=$!
tmp=$run_dir/.checkpoint.h5.tmp-$pid
saved=
for look in $(seq 1 100); do
  # Shell builtins only while waiting, so the run is frozen within microseconds of the event.
  while alive; do
    [ -e "$ck" ] && { [ -e "$tmp" ] || ! [ "$ck" -ef "$seen" ]; } && break
  done
  alive || fail "the run ended before the watcher saw a checkpoint with steps logged after it"
  kill -STOP $pid
  until stopped; do :; done
  ln -f "$ck" "$seen"
  saved=$(step_of "$ck") && logged=$(last_logged) || fail "could not read $ck or metrics.jsonl"
  [ "$logged" -gt "$saved" ] && break
  saved=
  kill -CONT $pid
done
[ -n "$saved" ] || fail "100 looks without the run logging past its checkpoint"
kill -9 $pid
wait $pid 2>/dev/null || true
echo "killed at step $logged with the checkpoint at step $saved"

# The killed run's event file holds the steps after the checkpoint that the resume redoes:
# without the START purge they would show twice.
/usr/bin/python3 "$reader" "$run_dir/tensorboard" --raw > "$work/raw_before.json" || fail "reader failed"

"$nanoattn" run "$work/exp.yaml" --out "$work/out" --resume > "$work/resume.log" 2>&1 || fail "--resume failed"
grep -q "resuming at step $saved" "$work/resume.log" || fail "did not resume at step $saved"
[ "$(ls "$run_dir/tensorboard" | wc -l)" = 2 ] || fail "expected 2 event files: $(ls "$run_dir/tensorboard")"

# Compares the reader's view of the folder with metrics.jsonl. $1: what to expect of the raw
# (unpurged) view: "duplicates" (a resumed run) or "unique" (one session).
check_against_metrics() {
  /usr/bin/python3 - "$reader" "$run_dir" "$1" <<'PY' || fail "TensorBoard does not match metrics.jsonl ($1)"
import json, os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import tb_events
run, raw_expect = sys.argv[2], sys.argv[3]
# metrics.jsonl key -> TensorBoard tag, from docs/FORMATS.md's table.
perf = {"elapsed_s", "tokens_per_s", "ms_per_step", "model_gflops", "mfu"}
def tag_of(key):
    for group in ("val", "test"):
        if key.startswith(group + "_"):
            return group + "/" + key[len(group) + 1:]
    return ("perf/" if key in perf else "train/") + key
want = {}
with open(os.path.join(run, "metrics.jsonl")) as f:
    for line in f:
        r = json.loads(line)
        for k, v in r.items():
            if k != "step":
                want.setdefault(tag_of(k), []).append((r["step"], v))
got = tb_events.scalars(os.path.join(run, "tensorboard"))
raw = tb_events.scalars(os.path.join(run, "tensorboard"), purge=False)
bad = []
if set(got) != set(want):
    bad.append(f"tags: TensorBoard only {sorted(set(got) - set(want))}, metrics.jsonl only {sorted(set(want) - set(got))}")
for tag in sorted(set(got) & set(want)):
    steps = [s for s, _ in got[tag]]
    if len(set(steps)) != len(steps):
        bad.append(f"{tag}: a step shows more than once")
    if len(got[tag]) != len(want[tag]):
        bad.append(f"{tag}: {len(got[tag])} points, metrics.jsonl has {len(want[tag])}")
    elif [s for s, _ in got[tag]] != [s for s, _ in want[tag]]:
        bad.append(f"{tag}: steps differ from metrics.jsonl")
    else:
        g = np.array([v for _, v in got[tag]], dtype=np.float32)
        w = np.array([np.nan if v is None else v for _, v in want[tag]], dtype=np.float64).astype(np.float32)
        if not np.array_equal(g, w, equal_nan=True):
            i = int(np.flatnonzero(~((g == w) | (np.isnan(g) & np.isnan(w))))[0])
            bad.append(f"{tag}: step {got[tag][i][0]}: {g[i]!r} vs metrics.jsonl {w[i]!r}")
dups = sum(len(p) - len({s for s, _ in p}) for p in raw.values())
if (dups > 0) != (raw_expect == "duplicates"):
    bad.append(f"the unpurged events hold {dups} repeated points; expected {raw_expect}")
print("\n".join(bad) if bad else f"{len(got)} tags, {sum(map(len, got.values()))} points, {dups} purged")
sys.exit(1 if bad else 0)
PY
}
check_against_metrics duplicates

# --overwrite: a fresh start removes the old event files; fewer steps, so stale data would show.
sed -i 's/steps: 300,/steps: 25,/' "$work/exp.yaml"
"$nanoattn" run "$work/exp.yaml" --out "$work/out" --overwrite > "$work/overwrite.log" 2>&1 || fail "--overwrite failed"
[ "$(ls "$run_dir/tensorboard" | wc -l)" = 1 ] || fail "after --overwrite: $(ls "$run_dir/tensorboard")"
check_against_metrics unique
echo "ok"

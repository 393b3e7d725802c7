#!/usr/bin/env bash
# `nanoattn study --emit slurm` without a cluster: a stand-in `sbatch` runs each array's tasks
# at submission, last task first (Slurm promises no order within an array), and runs nothing
# that depends on an array with a failed task. The study it runs
# gives the same report as `nanoattn study` run directly (timing masked), and a second
# submission skips every finished job. Usage: study_slurm.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
source "$(dirname "$0")/tiny_experiment.sh"  # $work/tiny.txt
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
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
    blocks:
      - token_embedding: {}
      - positional: {kind: learned}
      - residual: {body: [attention: {}]}
      - residual: {norm_name: ln2, body: [feed_forward: {}]}
      - layernorm: {name: ln_f}
      - lm_head: {tied_to: tok}
  train: {steps: 20, batch_size: 4, seq_len: 16, lr: 0.01, warmup: 3, windows: aligned}
  eval: {every: 10, batch_size: 16, dump_dtype: float16}
  log: {every: 10}
tune: {train.lr: [0.005, 0.01]}
match: {budget: params, tolerance: 0.02, solve: d_ff}
variants:
  - {name: elu, model: {attention: {plugin: linear}}}
distill: {alpha: 0.5, temperature: 2.0, top_k: 4}
generate: {tokens: 20}
YAML

# The stand-in sbatch: --array=0-N, --export=ALL,NANOATTN_WAVE=W, --dependency=KIND:ID, script.
mkdir bin
cat > bin/sbatch <<'SH'
#!/usr/bin/env bash
set -u
last=; dep=; wave=; script=; cpus=
for a in "$@"; do
  case $a in
    --array=0-*) last=${a#--array=0-} ;;
    --export=ALL,NANOATTN_WAVE=*) wave=${a#--export=ALL,NANOATTN_WAVE=} ;;
    --dependency=*) dep=${a#--dependency=} ;;
    --cpus-per-task=*) cpus=${a#--cpus-per-task=} ;;
    --*) ;;
    *) script=$a ;;
  esac
done
[ -n "$last" ] && [ -n "$wave" ] && [ -x "$script" ] || { echo "sbatch: bad arguments: $*" >&2; exit 1; }
id=$(( $(cat "$SBATCH_STATE/next" 2> /dev/null || echo 100) ))
echo $((id + 1)) > "$SBATCH_STATE/next"
echo "$wave $dep" >> "$SBATCH_STATE/submitted"
ok=1
case $dep in afterok:*) [ -e "$SBATCH_STATE/failed.${dep#afterok:}" ] && ok=0 ;; esac
for ((t = last; t >= 0; t--)); do
  if [ $ok = 1 ]; then
    SLURM_ARRAY_TASK_ID=$t SLURM_CPUS_PER_TASK=$cpus NANOATTN_WAVE=$wave "$script" \
      >> "$SBATCH_STATE/w$wave.log" 2>&1 || touch "$SBATCH_STATE/failed.$id"
  fi
done
[ $ok = 1 ] || touch "$SBATCH_STATE/failed.$id"
echo "$id;cluster"
SH
chmod +x bin/sbatch
export SBATCH_STATE=$work/sbatch
mkdir "$SBATCH_STATE"

"$nanoattn" study s.yaml --out A > a.log 2>&1 || { cat a.log; fail "study A"; }
"$nanoattn" study s.yaml --out S --emit slurm > emit.log 2>&1 || { cat emit.log; fail "--emit slurm"; }
grep -q "S/slurm/submit.sh" emit.log || { cat emit.log; fail "emit message"; }
[ -z "$(find S -name summary.json)" ] || fail "--emit ran a job"
bash -n S/slurm/submit.sh && bash -n S/slurm/task.sh || fail "the scripts do not parse"
PATH=$work/bin:$PATH SBATCH_OPTIONS="--cpus-per-task=1" bash S/slurm/submit.sh > submit.log 2>&1 || { cat submit.log; fail "submit"; }
cat submit.log
if ls "$SBATCH_STATE"/failed.* > /dev/null 2>&1; then cat "$SBATCH_STATE"/w*.log; fail "a task failed"; fi
# Waves: tuning, choosing, the baseline, its teacher and timings, ..., and the report last,
# once the previous wave ended (afterany); every other wave only after the previous succeeded.
waves=$(wc -l < "$SBATCH_STATE/submitted")
[ "$waves" -ge 4 ] || fail "only $waves waves"
head -1 "$SBATCH_STATE/submitted" | grep -qx "0 " || fail "the first wave depends on something"
tail -1 "$SBATCH_STATE/submitted" | grep -q "afterany:" || fail "the report does not run after failures too"
sed '1d;$d' "$SBATCH_STATE/submitted" | grep -v "afterok:" && fail "a middle wave does not wait for success"
mask() { sed "/<!-- timing:begin -->/,/<!-- timing:end -->/d; s#study [^ ]*s.yaml --out [^ ]*#study s.yaml --out X#" "$1"; }
diff <(mask A/report.md) <(mask S/report.md) > /dev/null || { diff <(mask A/report.md) <(mask S/report.md) | head -20; fail "report.md differs"; }
grep -q '"status": "done"' S/study.json && ! grep -q '"status": "\(to run\|failed\|running\)"' S/study.json || fail "manifest"

# Submitting again runs nothing: every task finds its outputs.
before=$(find S -name '*.h5' -printf '%p %T@\n' | sort)
rm -f "$SBATCH_STATE"/w*.log
PATH=$work/bin:$PATH bash S/slurm/submit.sh > submit2.log 2>&1 || { cat submit2.log; fail "second submit"; }
[ "$before" = "$(find S -name '*.h5' -printf '%p %T@\n' | sort)" ] || fail "a second submission rewrote results"
# Only the two in-process steps that read what exists run again: choosing and the report.
grep -h "^start" "$SBATCH_STATE"/w*.log | grep -v "report\|choose the baseline" && fail "a second submission reran a job"

# A task out of range, and a task whose dependency has not run.
if "$nanoattn" study s.yaml --out S --wave 99 --task 0 > r.log 2>&1; then fail "wave 99 accepted"; fi
grep -q "the study has .* waves" r.log || { cat r.log; fail "range message"; }
"$nanoattn" study s.yaml --out N --emit slurm > /dev/null
if "$nanoattn" study s.yaml --out N --wave 1 --task 0 > n.log 2>&1; then fail "a job ran before its dependencies"; fi
grep -q "needs .* first, which has not finished" n.log || { cat n.log; fail "dependency message"; }
echo "study_slurm: ok ($waves waves)"

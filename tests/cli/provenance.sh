#!/usr/bin/env bash
# Provenance a run folder and `eval` can be trusted for:
#   a checkpoint whose model plugin's .so changed is refused by eval, sample and run --resume
#   (naming the plugin, both hashes and the fix) unless --allow-plugin-change, which records it;
#   config.yaml and summary.json carry nanoattn's version, commit, host, start time and BLAS
#   kernels, and a resume "on another host" (other provenance) is not refused;
#   config.yaml writes floats in their shortest round-trip form (lr: 0.01, not 0.01000...01).
# Usage: provenance.sh <nanoattn binary>
set -euo pipefail
nanoattn=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
STEPS=4 source "$(dirname "$0")/tiny_experiment.sh"
cd "$work"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_error() {  # expect_error "<what>" "<expected text>" command...
  local what=$1 expected=$2 rc=0
  shift 2
  "$@" > out.txt 2> err.txt || rc=$?
  if [ $rc -ne 1 ]; then echo "FAIL ($what): exit code $rc, want 1"; cat err.txt; failures=$((failures + 1)); return; fi
  if ! grep -qF -- "$expected" err.txt; then
    echo "FAIL ($what): expected '$expected' in:"; cat err.txt; failures=$((failures + 1)); return
  fi
  echo "ok ($what): $(head -c 300 err.txt)"
}

"$nanoattn" run exp.yaml --out runs --set train.lr=0.004 > run.log 2>&1 || { cat run.log; exit 1; }
dir=runs/tiny/main
ck=$dir/checkpoint.h5

# config.yaml: shortest floats, and the provenance block.
grep -qx '  lr: 0.004' "$dir/config.yaml" || fail "config.yaml does not hold 'lr: 0.004': $(grep lr: "$dir/config.yaml")"
grep -q '0000000' "$dir/config.yaml" && fail "config.yaml holds a long float: $(grep 0000000 "$dir/config.yaml")"
for key in nanoattn_version git_commit host started_utc blas_kernels; do
  grep -q "^  $key: " "$dir/config.yaml" || fail "config.yaml has no provenance.$key"
  grep -q "\"$key\": " "$dir/summary.json" || fail "summary.json has no provenance.$key"
done
grep -Eq '^  started_utc: "?[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z' "$dir/config.yaml" ||
  fail "started_utc is not ISO 8601 UTC: $(grep started_utc "$dir/config.yaml")"

# A plugin build other than the one that trained the model: the checkpoint says so.
/usr/bin/python3 - "$ck" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["plugins"].attrs["linear"] = "ab" * 32
PY
short=$(sha256sum "$(dirname "$nanoattn")/../lib/nanoattn/plugins/"*linear*.so 2>/dev/null | head -1 | cut -c1-12 || true)
expect_error "eval, changed plugin" "plugin 'linear' is not the one it was trained with (sha256 abababababab... in the checkpoint, " \
  "$nanoattn" eval "$ck"
grep -qF -- "--allow-plugin-change" err.txt || fail "the eval refusal does not name --allow-plugin-change"
[ -z "$short" ] || grep -qF "$short... loaded" err.txt || fail "the eval refusal does not name the loaded hash $short"
expect_error "sample, changed plugin" "plugin 'linear' is not the one it was trained with" \
  "$nanoattn" sample "$ck" --tokens 5
"$nanoattn" eval "$ck" --json --allow-plugin-change > eval.json 2> eval.err || { cat eval.err; fail "eval --allow-plugin-change"; }
grep -q "warning: .*plugin 'linear'" eval.err || fail "eval --allow-plugin-change prints no warning"
/usr/bin/python3 -c '
import json, sys
c = json.load(open("eval.json"))["plugin_changes"]
assert len(c) == 1 and c[0]["plugin"] == "linear" and c[0]["checkpoint_sha256"] == "ab" * 32, c
' || fail "eval JSON does not record the plugin change"
"$nanoattn" sample "$ck" --tokens 5 --allow-plugin-change > /dev/null 2>&1 || fail "sample --allow-plugin-change"

# run --resume: an unfinished run (no summary.json) resumes from the changed checkpoint.
rm "$dir/summary.json"
expect_error "resume, changed plugin" "plugin 'linear' is not the one it was trained with" \
  "$nanoattn" run exp.yaml --out runs --set train.lr=0.004 --resume
# Another host and start time (the provenance block) is no change of settings.
sed -i 's/^  host: .*/  host: elsewhere/; s/^  started_utc: .*/  started_utc: 2001-01-01T00:00:00Z/' "$dir/config.yaml"
"$nanoattn" run exp.yaml --out runs --set train.lr=0.004 --resume --allow-plugin-change > resume.log 2>&1 ||
  { cat resume.log; fail "run --resume --allow-plugin-change"; }
/usr/bin/python3 -c '
import json
c = json.load(open("'"$dir"'/summary.json"))["plugin_changes"]
assert len(c) == 1 and c[0]["plugin"] == "linear", c
' || fail "summary.json does not record the plugin change"
# The resumed checkpoint holds the loaded hash again: a second resume is not refused.
rm "$dir/summary.json"
"$nanoattn" run exp.yaml --out runs --set train.lr=0.004 --resume > resume2.log 2>&1 || { cat resume2.log; fail "second resume"; }

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "provenance: all checks passed"

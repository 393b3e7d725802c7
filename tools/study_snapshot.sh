#!/usr/bin/env bash
# Copies the small files of a study into DEST (e.g. docs/study/rfr), keeping its layout: the
# manifest, the report and its plots, the generated experiment files, and of each run its
# summary, config, metrics, cost, RNN check and generation speed. Checkpoints, prediction dumps,
# KL files and logs stay where they are. Run it as runs finish, then commit DEST.
#   tools/study_snapshot.sh ~/nanoattn-studies/rfr docs/study/rfr
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 STUDY_DIR DEST" >&2; exit 2; }
src=$1 dest=$2
[ -f "$src/study.json" ] || { echo "$0: $src/study.json: not a study folder (no manifest)" >&2; exit 1; }
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
cd "$src"
find . \( -name logs -prune \) -o -type f \( -name study.json -o -name 'report.*' -o -name '*.png' -o -name '*.yaml' \
  -o -name summary.json -o -name metrics.jsonl -o -name cost.json -o -name recurrent.json -o -name generate.json \) \
  -print0 | tar --null -cf - -T - | tar -xf - -C "$dest"
echo "$(find "$dest" -name summary.json | wc -l) run summaries in $dest"

#!/usr/bin/env bash
# One causal linear attention layer (elu+1, with its qkv and output projections) forward +
# backward, nanoattn vs the PyTorch peer (tools/bench/long_context_peer.py, which times
# ../shared/reference/charlm.py's Attention with kind "linear", chunk 64), batch 1, d_model
# 256, 4 heads of 64, the same thread count, alternating the two `--repeats` times per length.
# Prints each side's median us/token and peak RSS growth, and the ratio PyTorch / nanoattn
# (> 1: nanoattn faster). OPENBLAS_* settings are inherited by both sides.
#
#   tools/bench/vs_pytorch_long.sh [--lengths "1024 16384"] [--repeats 3] [--threads 2]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
lengths="1024 16384" repeats=3 threads=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --lengths) lengths=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
nanoattn=${NANOATTN:-$root/build/bin/nanoattn}
peer=$root/tools/bench/long_context_peer.py
[[ -x $nanoattn ]] || { echo "no $nanoattn: build first (cmake --build build), or set NANOATTN" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}, $threads threads, batch 1, d_model 256, 4 heads, $repeats alternating runs per length (each a median of 3 after a warm-up)"
echo "| T | nanoattn us/token | PyTorch us/token | PyTorch / nanoattn | nanoattn peak RSS MiB | PyTorch peak RSS MiB |"
echo "|---:|---:|---:|---:|---:|---:|"
for T in $lengths; do
  na_us=() pt_us=() na_rss=() pt_rss=()
  for ((i = 1; i <= repeats; i++)); do
    csv=$(mktemp)
    "$nanoattn" bench attention --plugin linear --causal --backward --sequence-length "$T" --threads "$threads" \
      --repeats 3 --csv "$csv" > /dev/null
    # columns: ... T(4) ... fwd_bwd_ms(12) ... peak_rss_mib(14)
    row=$(tail -1 "$csv")
    rm -f "$csv"
    na_us+=("$(awk -F, -v T="$T" '{printf "%.4f", 1e3 * $12 / T}' <<< "$row")")
    na_rss+=("$(awk -F, '{print $14}' <<< "$row")")
    j=$(/usr/bin/python3 "$peer" --lengths "$T" --threads "$threads" --repeats 3 --json | tail -1)
    pt_us+=("$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["us_per_token"])' "$j")")
    pt_rss+=("$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["peak_rss_mib"])' "$j")")
    echo "# T $T run $i: nanoattn ${na_us[-1]} us/token, PyTorch ${pt_us[-1]} us/token" >&2
  done
  n=$(printf '%s\n' "${na_us[@]}" | median) p=$(printf '%s\n' "${pt_us[@]}" | median)
  nr=$(printf '%s\n' "${na_rss[@]}" | median) pr=$(printf '%s\n' "${pt_rss[@]}" | median)
  awk -v T="$T" -v n="$n" -v p="$p" -v nr="$nr" -v pr="$pr" \
    'BEGIN {printf "| %d | %.2f | %.2f | %.2fx | %.0f | %.0f |\n", T, n, p, p / n, nr, pr}'
done

#!/usr/bin/env bash
# nanoattn vs the PyTorch peer (../shared/reference/charlm.py) on the same model, data, thread
# count and environment, alternating the two several times; prints the median training
# tokens/s of each, their ratio, the ratio within each pair of runs, and peak RSS. OPENBLAS_* settings are inherited by both sides.
#
#   tools/bench/vs_pytorch.sh [--configs "S M"] [--attn "softmax linear"] [--repeats 3]
#                             [--steps 20] [--warmup 3] [--threads 2] [--out results.md]
#
# --generate: generation instead of training, on the S model (configs/bench/S_generate.yaml,
# max_len = prompt + tokens on both sides): `nanoattn bench generate` (softmax with its KV
# cache, linear as an RNN) against tools/bench/generate_peer.py (charlm.py's step), alternating;
# prints tokens/s, the ratio, and the µs/token of the first and last tenth of the tokens.
#   tools/bench/vs_pytorch.sh --generate [--tokens 1000] [--prompt 64] [--batch 1]
#                             [--attn "softmax linear"] [--repeats 3] [--threads 2] [--out results.md]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
configs="S M" attns="softmax linear" repeats=3 steps=20 warmup=3 threads=2 out=""
generate=0 tokens=1000 prompt=64 batch=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --generate) generate=1; shift ;;
    --tokens) tokens=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --attn) attns=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
nanoattn=${NANOATTN:-$root/build/bin/nanoattn}
peer=$root/../shared/reference/charlm.py
data=$root/../shared/data
[[ -x $nanoattn ]] || { echo "no $nanoattn: build first (cmake --build build), or set NANOATTN" >&2; exit 1; }
[[ -f $peer ]] || { echo "no peer at $peer" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }

if [[ $generate == 1 ]]; then
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset)}, $threads threads, batch $batch, prompt $prompt + $tokens new tokens, $repeats alternating runs" >&2
  for a in $attns; do
    for ((i = 1; i <= repeats; i++)); do
      j=$(NANOATTN_DATA=$data "$nanoattn" bench generate "$root/configs/bench/S_generate.yaml" --only "$a" --json \
            --mode cached --prompt "$prompt" --tokens "$tokens" --batch "$batch" --threads "$threads" \
            --set model.max_len=$((prompt + tokens)) | tail -1)
      echo "$a nanoattn $j" | tee -a "$log" >&2
      j=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$root/tools/bench/generate_peer.py" --attn "$a" --prompt "$prompt" \
            --tokens "$tokens" --batch "$batch" --threads "$threads" --data "$data/tinyshakespeare.txt" | tail -1)
      echo "$a pytorch $j" | tee -a "$log" >&2
    done
  done
  /usr/bin/python3 - "$log" "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    a, who, j = line.split(" ", 2)
    d = json.loads(j)
    r = rows.setdefault(a, {"nanoattn": [], "pytorch": []})
    r[who].append(d)
# As for training: the ratio of the medians, and each run's ratio to the peer run right after it.
lines = ["| attention | batch | prompt + tokens | nanoattn tok/s | PyTorch tok/s | ratio | ratio of each pair | "
         "nanoattn µs/token, first / last tenth | PyTorch µs/token, first / last tenth | state bytes (nanoattn / PyTorch) |",
         "|---|---|---|---|---|---|---|---|---|---|"]
for a, r in rows.items():
    tn = [d["tokens_per_s"] for d in r["nanoattn"]]
    tp = [d["tokens_per_s"] for d in r["pytorch"]]
    n, p = statistics.median(tn), statistics.median(tp)
    pairs = " / ".join(f"{x / y:.1f}" for x, y in zip(tn, tp))
    dec = lambda ds, k: statistics.median(d["us_per_token_deciles"][k] for d in ds)
    d0 = r["nanoattn"][0]
    lines.append(f"| {a} | {d0['batch']} | {d0['prompt']} + {d0['tokens']} | {n:,.0f} | {p:,.0f} | **{n / p:.1f}** | {pairs} | "
                 f"{dec(r['nanoattn'], 0):.0f} / {dec(r['nanoattn'], 9):.0f} | {dec(r['pytorch'], 0):.0f} / {dec(r['pytorch'], 9):.0f} | "
                 f"{r['nanoattn'][-1]['state_bytes']:,} / {r['pytorch'][-1]['state_bytes']:,} |")
text = "\n".join(lines) + "\n"
print(text)
if sys.argv[2]:
    open(sys.argv[2], "w").write(text)
PY
  exit 0
fi

declare -A flags=([S]="--d-model 128 --n-layer 4 --n-head 4 --seq-len 256 --batch 16"
                  [M]="--d-model 256 --n-layer 6 --n-head 8 --seq-len 256 --batch 16")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset)}, $threads threads, $steps timed steps after $warmup, $repeats alternating runs" >&2
for c in $configs; do
  for a in $attns; do
    for ((i = 1; i <= repeats; i++)); do
      j=$(NANOATTN_DATA=$data "$nanoattn" bench train "$root/configs/bench/$c.yaml" --only "$a" --steps "$steps" \
            --warmup "$warmup" --set threads="$threads" --json | tail -1)
      echo "$c $a nanoattn $j" | tee -a "$log" >&2
      j=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$peer" --attn "$a" ${flags[$c]} --steps $((steps + warmup)) \
            --warmup "$warmup" --threads "$threads" --eval-windows 1 --data "$data/tinyshakespeare.txt" 2>/dev/null | tail -1)
      echo "$c $a pytorch $j" | tee -a "$log" >&2
    done
  done
done
/usr/bin/python3 - "$log" "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    c, a, who, j = line.split(" ", 3)
    d = json.loads(j)
    r = rows.setdefault((c, a), {"nanoattn": [], "pytorch": [], "rss_n": [], "rss_p": [], "params": set()})
    r[who].append(d["tokens_per_s"])
    r["rss_n" if who == "nanoattn" else "rss_p"].append(d["peak_rss_mib"])
    r["params"].add(d["params"])
# ratio: of the two medians. Each run's ratio to the peer run right after it is listed too:
# adjacent runs share the machine's state, which on a shared VM drifts by tens of percent.
lines = ["| config | attention | params | nanoattn tok/s | PyTorch tok/s | ratio | ratio of each pair | nanoattn RSS MiB | PyTorch RSS MiB | RSS ratio |",
         "|---|---|---|---|---|---|---|---|---|---|"]
for (c, a), r in rows.items():
    n, p = statistics.median(r["nanoattn"]), statistics.median(r["pytorch"])
    pairs = " / ".join(f"{x / y:.2f}" for x, y in zip(r["nanoattn"], r["pytorch"]))
    rn, rp = max(r["rss_n"]), max(r["rss_p"])
    params = "/".join(f"{x:,}" for x in sorted(r["params"]))  # one number when both models match
    lines.append(f"| {c} | {a} | {params} | {n:,.0f} | {p:,.0f} | **{n / p:.2f}** | {pairs} | {rn:,.0f} | {rp:,.0f} | {rn / rp:.2f} |")
text = "\n".join(lines) + "\n"
print(text)
if sys.argv[2]:
    open(sys.argv[2], "w").write(text)
PY

#!/usr/bin/python3
"""PyTorch peer of `nanoattn bench attention --plugin linear --causal --backward`: times one
attention layer of ../shared/reference/charlm.py (Attention, kind "linear": qkv Linear,
elu+1 features, chunked causal linear attention, proj Linear) forward + backward at each T.

Same function as nanoattn's `linear` plugin (elu+1, eps 1e-6 added to phi(q).z, no 1/sqrt(d),
biases on both projections). Prints one line per T: median ms, us/token and peak RSS growth.

  /usr/bin/python3 tools/bench/long_context_peer.py --lengths 1024 16384 [--threads 2]
      [--d-model 256] [--heads 4] [--chunk 64] [--repeats 3] [--json]
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "shared", "reference"))
import charlm  # noqa: E402


def rss_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return -1


def reset_peak():  # VmHWM := VmRSS (Linux >= 4.0), as nanoattn's bench does
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(T, args):
    torch.manual_seed(1)
    attn = charlm.Attention(args.d_model, args.heads, "linear", args.chunk)
    x = torch.randn(args.batch, T, args.d_model, requires_grad=True)
    g = torch.randn(args.batch, T, args.d_model)
    before = rss_kib("VmRSS:")
    peak_ok = reset_peak()
    times = []
    for r in range(args.repeats + 1):  # one warm-up
        start = time.perf_counter()
        y = attn(x)
        y.backward(g)
        times.append(time.perf_counter() - start)
        x.grad = None
        attn.zero_grad(set_to_none=True)
        del y
    ms = 1e3 * statistics.median(times[1:])
    peak = (rss_kib("VmHWM:") - before) / 1024 if peak_ok else float("nan")
    return {"T": T, "fwd_bwd_ms": ms, "us_per_token": 1e3 * ms / (T * args.batch), "peak_rss_mib": peak}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 16384])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true", help="one JSON object per T instead of a table")
    args = p.parse_args()
    core = charlm.set_threads(args.threads)
    if not args.json:
        print(f"# PyTorch {torch.__version__}, {args.threads} threads, OpenBLAS core {core}; batch {args.batch}, "
              f"d_model {args.d_model}, {args.heads} heads, chunk {args.chunk}; median of {args.repeats} after a warm-up")
        print("| T | fwd+bwd ms | us/token | peak RSS MiB |\n|---:|---:|---:|---:|")
    for T in args.lengths:
        r = measure(T, args)
        if args.json:
            print(json.dumps(r))
        else:
            print(f"| {T} | {r['fwd_bwd_ms']:.2f} | {r['us_per_token']:.2f} | {r['peak_rss_mib']:.1f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

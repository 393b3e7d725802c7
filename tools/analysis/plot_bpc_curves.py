#!/usr/bin/python3
"""Validation bpc curves of several runs, from their metrics.jsonl, in one PNG.

    /usr/bin/python3 tools/analysis/plot_bpc_curves.py runs/quickstart/softmax runs/quickstart/linear \
        --out curves.png [--x tokens] [--train]

Each argument is a run folder (or its metrics.jsonl). Word-level runs plot val_bpw.
"""
import argparse
import json
import math
import os

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt


def read_metrics(path):
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders or metrics.jsonl files")
    ap.add_argument("--out", default="bpc_curves.png")
    ap.add_argument("--x", choices=["step", "tokens"], default="step", help="x axis")
    ap.add_argument("--train", action="store_true", help="also plot the training loss in bits (dashed)")
    args = ap.parse_args()

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    unit = "bpc"
    for run in args.runs:
        records = read_metrics(run)
        name = os.path.basename(os.path.normpath(os.path.dirname(run) if run.endswith(".jsonl") else run))
        unit = "bpw" if any("val_bpw" in r for r in records) else "bpc"
        tokens_at = {r["step"]: r["tokens"] for r in records if r.get("tokens") is not None}
        x_of = (lambda s: tokens_at.get(s, math.nan)) if args.x == "tokens" else (lambda s: s)
        val = [(x_of(r["step"]), r["val_" + unit]) for r in records if r.get("val_" + unit) is not None]
        if val:
            line, = ax.plot(*zip(*val), marker="o", label=f"{name} (val)")
        if args.train:
            train = [(x_of(r["step"]), r["loss"] / math.log(2)) for r in records if r.get("loss") is not None]
            if train:
                ax.plot(*zip(*train), linestyle="--", alpha=0.6, color=line.get_color() if val else None,
                        label=f"{name} (train loss, bits)")
    ax.set_xlabel("training tokens" if args.x == "tokens" else "step")
    ax.set_ylabel(f"{unit} (whole validation split)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out)
    print(args.out)


if __name__ == "__main__":
    main()

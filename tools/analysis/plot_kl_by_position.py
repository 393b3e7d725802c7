#!/usr/bin/python3
"""KL divergence and bpc against the position in the context window, from `nanoattn kl --out`.

    nanoattn kl softmax/preds_val.h5 linear/preds_val.h5 --out kl.h5
    /usr/bin/python3 tools/analysis/plot_kl_by_position.py kl.h5 --out kl_by_position.png [--smooth 8]

Top: the mean KL(A||B), KL(B||A) and JS divergence of the tokens at each position; bottom: each
model's bits per token there. All in bits (log base 2).
"""
import argparse

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def smooth(y, width):
    """Moving average over `width` positions (count-weighted means would be the same: every position
    of a whole-split evaluation holds the same number of tokens, but the last)."""
    if width <= 1:
        return y
    return np.convolve(y, np.ones(width) / width, mode="valid")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kl", help="the file written by nanoattn kl --out")
    ap.add_argument("--out", default="kl_by_position.png")
    ap.add_argument("--smooth", type=int, default=1, help="moving average over this many positions")
    args = ap.parse_args()

    with h5py.File(args.kl, "r") as f:
        a, b, unit = f.attrs["run_a"], f.attrs["run_b"], f.attrs["unit"]
        by = {k: f["by_position"][k][()] for k in ("kl_ab", "kl_ba", "js", "bits_a", "bits_b")}
        split, tokens = f.attrs["split"], f.attrs["tokens"]
    pos = np.arange(len(by["kl_ab"]))
    x = pos[: len(smooth(pos, args.smooth))] + (args.smooth - 1) / 2

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), dpi=110, sharex=True)
    top.plot(x, smooth(by["kl_ab"], args.smooth), label=f"KL({a} || {b})")
    top.plot(x, smooth(by["kl_ba"], args.smooth), label=f"KL({b} || {a})")
    top.plot(x, smooth(by["js"], args.smooth), label="Jensen-Shannon")
    top.set_ylabel("bits per token")
    top.set_title(f"{a} vs {b}: {tokens} {split} tokens")
    top.legend()
    bottom.plot(x, smooth(by["bits_a"], args.smooth), label=a)
    bottom.plot(x, smooth(by["bits_b"], args.smooth), label=b)
    bottom.set_ylabel(unit)
    bottom.set_xlabel("position in the context window")
    bottom.legend()
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out)
    print(args.out)


if __name__ == "__main__":
    main()

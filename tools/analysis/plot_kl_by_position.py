#!/usr/bin/python3
"""KL divergence and bpc against the position in the context window, from `nanoattn kl --out`.

    nanoattn kl softmax/preds_val.h5 linear/preds_val.h5 --out kl.h5
    /usr/bin/python3 tools/analysis/plot_kl_by_position.py kl.h5 --out kl_by_position.png [--smooth 8] \
        [--dump-data kl.json]

Top: the mean KL(A||B), KL(B||A) and JS divergence of the tokens at each position, each with a
95% band; bottom: each model's bits per token there (means only: the KL file keeps no per-token
NLL). All in bits (log base 2).

The band is a normal-approximation 95% confidence interval of the mean over the tokens at that
position: mean +- 1.96 x SE, SE = s / sqrt(n), s the sample standard deviation (n - 1) of the n
per-token divergences (/kl_ab, /kl_ba, /js with /positions); no band where n < 2. It treats the
tokens at a position as independent draws: they come from different windows, but neighbouring
text makes them somewhat alike, so read the band as a lower bound on the uncertainty.

--smooth W pools the tokens of W consecutive positions (p .. p+W-1, drawn at their centre): the
mean and band are those of the pooled tokens, and the bits are the token-weighted mean.

--dump-data FILE.json writes what is drawn: {x, tokens (per point), tokens_total, smooth, split, kl_ab/kl_ba/js: {mean, low,
high}, bits_a, bits_b, run_a, run_b, unit}; NaN as null.
"""
import argparse
import json
import math

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
DIVERGENCES = ("kl_ab", "kl_ba", "js")


def by_position(path, width=1):
    """The plotted series (see --dump-data) from a KL file."""
    with h5py.File(path, "r") as f:
        text = {k: str(f.attrs[k].decode() if isinstance(f.attrs[k], bytes) else f.attrs[k])
                for k in ("run_a", "run_b", "unit", "split")}
        total = int(f.attrs["tokens"])
        pos = f["positions"][()]
        per_token = {k: f[k][()] for k in DIVERGENCES}
        bits = {k: f["by_position"][k][()] for k in ("bits_a", "bits_b")}
        counts = f["by_position/tokens"][()]
    width = max(1, width)
    n_pos = len(counts)
    order = np.argsort(pos, kind="stable")
    cuts = np.searchsorted(pos[order], np.arange(n_pos + 1))  # tokens of position p: order[cuts[p]:cuts[p+1]]
    starts = range(max(0, n_pos - width + 1))
    out = {"x": [p + (width - 1) / 2 for p in starts], "smooth": width,
           "tokens": [int(cuts[p + width] - cuts[p]) for p in starts], "tokens_total": total, **text}
    for k in DIVERGENCES:
        sorted_values = per_token[k][order]
        mean, low, high = [], [], []
        for p in starts:
            v = sorted_values[cuts[p]:cuts[p + width]]
            m = float(v.mean()) if len(v) else math.nan
            half = Z95 * float(v.std(ddof=1)) / math.sqrt(len(v)) if len(v) >= 2 else math.nan
            mean.append(m), low.append(m - half), high.append(m + half)
        out[k] = {"mean": mean, "low": low, "high": high}
    for k, v in bits.items():
        out[k] = [float(np.dot(v[p:p + width], counts[p:p + width]) / max(1, counts[p:p + width].sum())) for p in starts]
    return out


def plot(d, out):
    a, b = d["run_a"], d["run_b"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.4), dpi=110, sharex=True)
    names = {"kl_ab": f"KL({a} || {b})", "kl_ba": f"KL({b} || {a})", "js": "Jensen-Shannon"}
    for k in DIVERGENCES:
        line, = top.plot(d["x"], d[k]["mean"], label=names[k])
        top.fill_between(d["x"], d[k]["low"], d[k]["high"], color=line.get_color(), alpha=0.2, linewidth=0)
    top.fill_between([], [], [], color="0.6", alpha=0.3, label="95% CI of the mean (±1.96 SE)")
    top.set_ylabel("bits per token")
    pooled = f", pooled over {d['smooth']} positions" if d["smooth"] > 1 else ""
    top.set_title(f"{a} vs {b}: {d['tokens_total']} {d['split']} tokens{pooled}")
    top.legend(fontsize=8)
    bottom.plot(d["x"], d["bits_a"], label=a)
    bottom.plot(d["x"], d["bits_b"], label=b)
    bottom.set_ylabel(d["unit"])
    bottom.set_xlabel("position in the context window")
    bottom.legend(fontsize=8)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.text(0.01, 0.005, "band: mean ± 1.96 x standard error over the tokens at each position "
             "(normal approximation)", fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(out)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kl", help="the file written by nanoattn kl --out")
    ap.add_argument("--out", default="kl_by_position.png")
    ap.add_argument("--smooth", type=int, default=1, help="pool the tokens of this many consecutive positions")
    ap.add_argument("--dump-data", metavar="FILE.json", help="also write the plotted series as JSON")
    args = ap.parse_args()

    d = by_position(args.kl, args.smooth)
    plot(d, args.out)
    if args.dump_data:
        def strict(v):  # NaN -> null: strict JSON
            if isinstance(v, float) and math.isnan(v):
                return None
            return {k: strict(x) for k, x in v.items()} if isinstance(v, dict) else [strict(x) for x in v] if isinstance(v, list) else v
        with open(args.dump_data, "w") as f:
            json.dump(strict(d), f)
    print(args.out)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Plot `nanoattn bench attention` results: time and memory against sequence length, log-log.

    nanoattn bench attention --sweep-lengths 256,1024,4096,16384 --out bench/
    /usr/bin/python3 tools/analysis/plot_attention_bench.py bench/attention_bench.csv [-o bench/attention_bench.png]

One line per plugin (and mode and options, when a CSV mixes several): the left panel is the
forward time (solid) and, if the sweep ran with --backward, forward + backward (dashed); the
right panel is the tape's memory (forward, or forward + backward when measured) and the peak
RSS above the process baseline (dotted). Rows the bench skipped (a `note`) are left out. A
reference slope T and T^2 is drawn in grey to read the scaling off the plot.

Needs numpy and matplotlib (Debian's python3-numpy and python3-matplotlib, installed for
/usr/bin/python3 by tools/setup.sh).
"""
import argparse
import csv
import math
import os
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def number(text):
    try:
        v = float(text)
    except (TypeError, ValueError):
        return math.nan
    return v


def read_rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"plugin", "mode", "T", "forward_ms"}
        missing = need - set(reader.fieldnames or [])
        if missing:
            sys.exit(f"{path}: not a `nanoattn bench attention` CSV (missing columns: {', '.join(sorted(missing))})")
        return list(reader)


def series(rows):
    """Groups rows by (plugin, mode, options) in file order, each sorted by T."""
    modes = {r["mode"] for r in rows}
    options_per_plugin = {}
    for r in rows:
        options_per_plugin.setdefault(r["plugin"], set()).add(r.get("options", ""))
    groups = OrderedDict()
    for r in rows:
        if r.get("note"):
            continue
        label = r["plugin"]
        if len(options_per_plugin[r["plugin"]]) > 1 and r.get("options"):
            label += f" [{r['options']}]"
        if len(modes) > 1:
            label += f" ({r['mode']})"
        groups.setdefault(label, []).append(r)
    out = OrderedDict()
    for label, rs in groups.items():
        rs.sort(key=lambda r: int(r["T"]))
        col = lambda key: np.array([number(r.get(key)) for r in rs])  # noqa: E731
        out[label] = {
            "T": np.array([int(r["T"]) for r in rs], dtype=float),
            "fwd": col("forward_ms"),
            "fwd_bwd": col("fwd_bwd_ms"),
            "fwd_mib": col("forward_tape_mib"),
            "fwd_bwd_mib": col("fwd_bwd_tape_mib"),
            "rss": col("peak_rss_mib"),
        }
    return out


def reference_slopes(ax, T, y, label_fmt="{}"):
    """Grey T and T^2 lines through the smallest point of y, for reading off the scaling."""
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() == 0 or len(np.unique(T)) < 2:
        return
    t0, y0 = T[ok].min(), np.nanmin(y[ok])
    ts = np.array([T.min(), T.max()])
    for power, style in ((1, ":"), (2, "-.")):
        ax.plot(ts, y0 * (ts / t0) ** power, style, color="0.6", linewidth=1, label=label_fmt.format(f"~T^{power}" if power > 1 else "~T"))


def plot(path, out, title=None):
    rows = read_rows(path)
    groups = series(rows)
    if not groups:
        sys.exit(f"{path}: no measured rows to plot (every row was skipped)")
    has_bwd = any(np.isfinite(g["fwd_bwd"]).any() for g in groups.values())
    has_rss = any(np.isfinite(g["rss"]).any() for g in groups.values())

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    all_T, all_time, all_mem = [], [], []
    for i, (label, g) in enumerate(groups.items()):
        c = colors[i % len(colors)]
        ax_t.plot(g["T"], g["fwd"], "o-", color=c, label=label + (" fwd" if has_bwd else ""))
        if has_bwd and np.isfinite(g["fwd_bwd"]).any():
            ax_t.plot(g["T"], g["fwd_bwd"], "s--", color=c, label=label + " fwd+bwd")
        mem = g["fwd_bwd_mib"] if np.isfinite(g["fwd_bwd_mib"]).any() else g["fwd_mib"]
        ax_m.plot(g["T"], mem, "o-", color=c, label=label + " tape")
        if has_rss and np.isfinite(g["rss"]).any():
            ax_m.plot(g["T"], g["rss"], "x:", color=c, label=label + " peak RSS")
        all_T.append(g["T"])
        all_time.append(g["fwd"])
        all_mem.append(mem)
    T = np.concatenate(all_T)
    reference_slopes(ax_t, T, np.concatenate(all_time))
    reference_slopes(ax_m, T, np.concatenate(all_mem))

    first = rows[0]
    setting = f"batch {first.get('batch', '?')}, d_model {first.get('d_model', '?')}, {first.get('heads', '?')} heads, {first.get('threads', '?')} threads"
    ax_t.set_title("time" + (" (solid: forward, dashed: forward + backward)" if has_bwd else " (forward)"))
    ax_m.set_title("memory" + (" (solid: tape, dotted: peak RSS above baseline)" if has_rss else " (tape)"))
    ax_t.set_ylabel("ms")
    ax_m.set_ylabel("MiB")
    for ax in (ax_t, ax_m):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    fig.suptitle(title or f"nanoattn bench attention: {setting}")
    fig.savefig(out, dpi=120, bbox_inches="tight")
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", help="the CSV written by `nanoattn bench attention --csv/--out`")
    ap.add_argument("-o", "--out", help="output image (default: the CSV's path with .png)")
    ap.add_argument("--title", help="figure title (default: the bench settings)")
    a = ap.parse_args()
    out = a.out or os.path.splitext(a.csv)[0] + ".png"
    plot(a.csv, out, a.title)


if __name__ == "__main__":
    main()

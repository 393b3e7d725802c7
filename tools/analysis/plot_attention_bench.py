#!/usr/bin/python3
"""Plot `nanoattn bench attention` results: time and memory against sequence length, log-log.

    nanoattn bench attention --sweep-lengths 256,1024,4096,16384 --out bench/
    /usr/bin/python3 tools/analysis/plot_attention_bench.py bench/attention_bench.csv [-o bench/attention_bench.png]

One panel per metric the CSV holds: forward time, forward + backward time (--backward), tape
memory forward and forward + backward, peak RSS above the process baseline. One line per plugin
(and mode and options, when a CSV mixes several), with the same colour and marker in every panel
and one legend for the figure. Rows the bench skipped (a `note`) and empty cells are left out.
Grey reference slopes ~T and ~T^2 through each panel's smallest point read off the scaling.
--per-token plots time per token instead (forward and forward + backward us/token = 1000 ms /
(T batch)), log-log, with a grey band of +-20% around each panel's first point: a flat line in
the band is the linear scaling long-context kernels are after.
--dump-data FILE.json writes the lines drawn: {column: {label: {T: [...], y: [...]}}}.

Needs numpy and matplotlib (Debian's python3-numpy and python3-matplotlib, installed for
/usr/bin/python3 by tools/setup.sh).
"""
import argparse
import csv
import json
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
        tokens = np.array([int(r["T"]) * number(r.get("batch", 1)) for r in rs], dtype=float)
        out[label] = {
            "T": np.array([int(r["T"]) for r in rs], dtype=float),
            "fwd_us": 1e3 * col("forward_ms") / tokens,
            "fwd_bwd_us": 1e3 * col("fwd_bwd_ms") / tokens,
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


METRICS = (  # CSV column, panel title, unit
    ("forward_ms", "forward time", "ms"),
    ("fwd_bwd_ms", "forward + backward time", "ms"),
    ("forward_tape_mib", "tape memory, forward", "MiB"),
    ("fwd_bwd_tape_mib", "tape memory, forward + backward", "MiB"),
    ("peak_rss_mib", "peak RSS above the baseline", "MiB"),
)
PER_TOKEN = (  # derived column, panel title, unit
    ("forward_us_per_token", "forward time per token", "us"),
    ("fwd_bwd_us_per_token", "forward + backward time per token", "us"),
)
KEYS = {"forward_ms": "fwd", "fwd_bwd_ms": "fwd_bwd", "forward_tape_mib": "fwd_mib",
        "fwd_bwd_tape_mib": "fwd_bwd_mib", "peak_rss_mib": "rss",
        "forward_us_per_token": "fwd_us", "fwd_bwd_us_per_token": "fwd_bwd_us"}


def panels(groups, metrics=METRICS):
    """{column: {label: {"T": [...], "y": [...]}}} for each metric some series measured; a
    series' unmeasured points (empty cells) are left out of its line."""
    out = OrderedDict()
    for column, _, _ in metrics:
        lines = OrderedDict()
        for label, g in groups.items():
            y = g[KEYS[column]]
            ok = np.isfinite(y)
            if ok.any():
                lines[label] = {"T": g["T"][ok].tolist(), "y": y[ok].tolist()}
        if lines:
            out[column] = lines
    return out


def flat_band(ax, T, y):
    """A grey band of +-20% around the value at the smallest T: where a flat line should stay."""
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() == 0:
        return
    y0 = y[ok][np.argmin(T[ok])]
    ax.axhspan(0.8 * y0, 1.2 * y0, color="0.85", alpha=0.6, label="+-20% of the first point")


def plot(path, out, title=None, dump=None, per_token=False):
    rows = read_rows(path)
    groups = series(rows)
    if not groups:
        sys.exit(f"{path}: no measured rows to plot (every row was skipped)")
    metrics = PER_TOKEN if per_token else METRICS
    data = panels(groups, metrics)
    if dump:
        with open(dump, "w") as f:
            json.dump(data, f)

    ncols = 2 if len(data) > 1 else 1
    nrows = math.ceil(len(data) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 3.8 * nrows),
                             squeeze=False, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "os^vDP*X"
    style = {label: (colors[i % len(colors)], markers[i // len(colors) % len(markers)]) for i, label in enumerate(groups)}
    titles = {column: (name, unit) for column, name, unit in metrics}
    for ax, (column, lines) in zip(axes.flat, data.items()):
        for label, line in lines.items():
            color, marker = style[label]
            ax.plot(line["T"], line["y"], marker=marker, color=color, label=label)
        T_all = np.concatenate([l["T"] for l in lines.values()])
        y_all = np.concatenate([l["y"] for l in lines.values()])
        if per_token:
            flat_band(ax, T_all, y_all)
        else:
            reference_slopes(ax, T_all, y_all)
        name, unit = titles[column]
        ax.set_title(f"{name} ({column})", fontsize=10)
        ax.set_ylabel(unit)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(data):]:
        ax.set_visible(False)
    # One legend for the figure: each series once (same colour and marker in every panel),
    # then the grey reference slopes.
    handles, labels = [], []
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h), labels.append(l)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=min(4, len(labels)), fontsize=9,
               frameon=False)

    first = rows[0]
    setting = f"batch {first.get('batch', '?')}, d_model {first.get('d_model', '?')}, {first.get('heads', '?')} heads, {first.get('threads', '?')} threads"
    fig.suptitle(title or f"nanoattn bench attention: {setting}")
    fig.savefig(out, dpi=120, bbox_inches="tight")  # "tight": keeps the legend below the panels
    plt.close(fig)
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", help="the CSV written by `nanoattn bench attention --csv/--out`")
    ap.add_argument("-o", "--out", help="output image (default: the CSV's path with .png)")
    ap.add_argument("--title", help="figure title (default: the bench settings)")
    ap.add_argument("--dump-data", metavar="FILE.json", help="also write the plotted lines as JSON")
    ap.add_argument("--per-token", action="store_true",
                    help="plot us/token (forward, forward + backward) against T instead of totals")
    a = ap.parse_args()
    out = a.out or os.path.splitext(a.csv)[0] + ".png"
    plot(a.csv, out, a.title, a.dump_data, a.per_token)


if __name__ == "__main__":
    main()

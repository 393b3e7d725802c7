#!/usr/bin/python3
"""Validation bpc curves of several runs, from their metrics.jsonl, in one PNG.

    /usr/bin/python3 tools/analysis/plot_bpc_curves.py runs/quickstart/softmax runs/quickstart/linear \
        --out curves.png [--x tokens] [--train] [--dump-data curves.json]

Each argument is a run folder (or its metrics.jsonl). Word-level runs plot val_bpw. Every
validation record is drawn (a non-finite value, `null` in metrics.jsonl, leaves a gap).

Legends name each run by its path relative to the output folder, `<experiment>/<run>` (the last
two folders of the run's path); when two runs still share that name, more leading folders are
added until the names differ.

--x tokens: training tokens at step s = s x train.batch_size x train.seq_len, read from the run's
config.yaml (what the trainer counts: each step trains on one batch of that many tokens), so a
val point shows even where no training record shares its step. The training records' `tokens`
are checked against it (a mismatch is an error). Without config.yaml (a bare metrics.jsonl),
the tokens per step come from the training records, which must all agree.

--dump-data FILE.json writes what is drawn: a list of series {label, run, kind ("val" or
"train"), unit, step, x, y}, y in bits (the training loss as loss / ln 2); NaN as null.
"""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402


def run_folder(path):
    return os.path.dirname(path) if path.endswith(".jsonl") else path


def read_metrics(path):
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def train_settings(config_path):
    """The scalar keys of config.yaml's top-level `train:` block (as nanoattn writes it: block
    style, two-space indent), as strings. No YAML library needed."""
    settings, inside = {}, False
    with open(config_path) as f:
        for line in f:
            if not line.startswith(" "):
                inside = line.rstrip() == "train:"
            elif inside and line.startswith("  ") and not line.startswith("   ") and ":" in line:
                key, value = line.strip().split(":", 1)
                settings[key] = value.strip()
    return settings


def tokens_per_step(folder, records, name):
    """Training tokens per step (see the docstring); exits with a message if it cannot be known."""
    trained = [(r["step"], r["tokens"]) for r in records if r.get("tokens") is not None and r["step"] > 0]
    config = os.path.join(folder, "config.yaml")
    if os.path.exists(config):
        t = train_settings(config)
        if "batch_size" not in t or "seq_len" not in t:
            sys.exit(f"{config}: no train.batch_size / train.seq_len: cannot put {name} on a token axis")
        per_step = int(t["batch_size"]) * int(t["seq_len"])
        source = f"{config} (batch_size x seq_len = {per_step})"
    elif trained:
        per_step, source = trained[0][1] / trained[0][0], "its first training record"
    else:
        sys.exit(f"{name}: neither config.yaml nor training records: cannot put it on a token axis")
    for step, tokens in trained:
        if tokens != step * per_step:
            sys.exit(f"{name}: metrics.jsonl has tokens {tokens} at step {step}, but {source} gives "
                     f"{step * per_step:g}: tokens per step are not constant; plot with --x step")
    return per_step


def labels(folders):
    """`<experiment>/<run>` for each run folder, longer where two would be equal."""
    parts = [os.path.abspath(f).strip(os.sep).split(os.sep) for f in folders]
    depth = [2] * len(parts)
    while True:
        names = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        clash = [i for i, n in enumerate(names) if names.count(n) > 1 and depth[i] < len(parts[i])]
        if not clash:
            return names
        for i in clash:
            depth[i] += 1


def number(v):
    return math.nan if v is None else float(v)


def curves(runs, x="step", train=False):
    """The series the plot draws (see --dump-data), in argument order."""
    out = []
    for run, label in zip(runs, labels([run_folder(r) for r in runs])):
        records = read_metrics(run)
        unit = "bpw" if any("val_bpw" in r for r in records) else "bpc"
        per_step = tokens_per_step(run_folder(run), records, run) if x == "tokens" else 1
        kinds = [("val", "val_" + unit, 1.0)] + ([("train", "loss", 1 / math.log(2))] if train else [])
        for kind, key, scale in kinds:
            rows = [r for r in records if key in r]
            if rows:
                steps = [r["step"] for r in rows]
                out.append({"label": label, "run": run, "kind": kind, "unit": unit, "step": steps,
                            "x": [s * per_step for s in steps], "y": [number(r[key]) * scale for r in rows]})
    return out


def plot(series, out, x="step"):
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    color = {}
    for s in series:
        if s["kind"] == "val":
            line, = ax.plot(s["x"], s["y"], marker="o", markersize=3, label=f"{s['label']} (val)")
            color[s["label"]] = line.get_color()
        else:
            ax.plot(s["x"], s["y"], linestyle="--", alpha=0.6, color=color.get(s["label"]),
                    label=f"{s['label']} (train loss, bits)")
    units = sorted({s["unit"] for s in series}) or ["bpc"]
    ax.set_xlabel("training tokens" if x == "tokens" else "step")
    ax.set_ylabel(f"{' / '.join(units)} (whole validation split)")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders or metrics.jsonl files")
    ap.add_argument("--out", default="bpc_curves.png")
    ap.add_argument("--x", choices=["step", "tokens"], default="step", help="x axis")
    ap.add_argument("--train", action="store_true", help="also plot the training loss in bits (dashed)")
    ap.add_argument("--dump-data", metavar="FILE.json", help="also write the plotted series as JSON")
    args = ap.parse_args()

    series = curves(args.runs, args.x, args.train)
    if not any(s["kind"] == "val" for s in series):
        print("warning: no validation records in these runs (eval.every: 0?)", file=sys.stderr)
    plot(series, args.out, args.x)
    if args.dump_data:
        with open(args.dump_data, "w") as f:  # NaN -> null: strict JSON
            json.dump([{**s, "y": [None if math.isnan(v) else v for v in s["y"]]} for s in series], f)
    print(args.out)


if __name__ == "__main__":
    main()

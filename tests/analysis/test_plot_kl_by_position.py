"""tools/analysis/plot_kl_by_position.py on a real KL file: what it draws equals the file.

    /usr/bin/python3 tests/analysis/test_plot_kl_by_position.py path/to/nanoattn

A tiny experiment with two runs, the second `compare_to` the first, gives `kl_vs_ref.h5`. The
test groups its per-token /kl_ab, /kl_ba, /js by /positions itself and checks the dumped series
(--dump-data): per position the mean (also equal to the file's /by_position means), the 95% band
mean +- z x s / sqrt(n) with the sample standard deviation, the token counts; the same pooled
over 4 positions with --smooth 4; the bits per position; and a whole PNG.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools", "analysis", "plot_kl_by_position.py")
sys.path.insert(0, HERE)
import plot_fixtures  # noqa: E402

Z = 1.959963984540054  # standard normal 0.975 quantile
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def expected(values):
    """Mean and 95% half-width of a sample, written out."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, Z * sd / math.sqrt(n)


def plot(work, kl, *args):
    dump, png = os.path.join(work, "kl.json"), os.path.join(work, "kl.png")
    r = subprocess.run([sys.executable, SCRIPT, kl, "--out", png, "--dump-data", dump, *args], capture_output=True, text=True)
    check(r.returncode == 0, f"plot_kl_by_position.py {args} failed: {r.stderr}")
    plot_fixtures.png_size(png)
    with open(dump) as f:
        return json.load(f)


def close(a, b, tol=1e-9):
    return a is not None and abs(a - b) <= tol * max(1e-12, abs(b))


def main():
    nanoattn = sys.argv[1]
    work = tempfile.mkdtemp()
    try:
        runs = "runs:\n  - name: ref\n  - name: other\n    seed: 4\n    compare_to: ref\n"
        kl = os.path.join(plot_fixtures.experiment(nanoattn, work, "kl", steps=10, eval_every=0, runs=runs),
                          "other", "kl_vs_ref.h5")
        with h5py.File(kl, "r") as f:
            pos = f["positions"][()]
            per_token = {k: f[k][()] for k in ("kl_ab", "kl_ba", "js")}
            file_means = {k: f["by_position"][k][()] for k in ("kl_ab", "kl_ba", "js", "bits_a", "bits_b")}
            counts = f["by_position/tokens"][()]
        n_pos = int(pos.max()) + 1

        for width in (1, 4):
            d = plot(work, kl, "--smooth", str(width))
            starts = list(range(n_pos - width + 1))
            check(d["x"] == [p + (width - 1) / 2 for p in starts], f"smooth {width}: x {d['x'][:5]}...")
            for p in starts:
                inside = (pos >= p) & (pos < p + width)
                check(d["tokens"][p] == int(inside.sum()), f"smooth {width}: tokens at {p}")
                for k, values in per_token.items():
                    mean, half = expected(list(values[inside]))
                    got = d[k]
                    ok = close(got["mean"][p], mean) and close(got["low"][p], mean - half) and close(got["high"][p], mean + half)
                    check(ok, f"smooth {width}, {k} at position {p}: {got['mean'][p]} [{got['low'][p]}, {got['high'][p]}]"
                              f" vs {mean} +- {half}")
                    if width == 1:
                        check(close(got["mean"][p], file_means[k][p]), f"{k} at {p}: not the file's /by_position mean")
                for k in ("bits_a", "bits_b"):
                    w = counts[p:p + width]
                    check(close(d[k][p], float((file_means[k][p:p + width] * w).sum() / w.sum())), f"smooth {width}: {k} at {p}")
    finally:
        shutil.rmtree(work)
    print("FAILED" if failures else "ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

"""tools/analysis/plot_attention_bench.py on a synthetic `nanoattn bench attention` CSV (the
header tools/bench_attention.cpp writes): the lines it draws (--dump-data) equal the CSV's cells.

    /usr/bin/python3 tests/analysis/test_plot_attention_bench.py

Three plugins, one in two modes (so labels carry the mode), a skipped row (a note), an empty
cell, no peak RSS measured (no panel for it), rows out of T order. Then a whole PNG.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools", "analysis", "plot_attention_bench.py")
sys.path.insert(0, HERE)
import plot_fixtures  # noqa: E402

HEADER = ("plugin,options,mode,T,batch,d_model,heads,threads,repeats,forward_ms,forward_tape_mib,fwd_bwd_ms,"
          "fwd_bwd_tape_mib,peak_rss_mib,note")
ROWS = [  # plugin, mode, T, forward_ms, forward_tape_mib, fwd_bwd_ms, fwd_bwd_tape_mib, note
    ("softmax", "causal", 1024, 4.5, 2.0, 13.25, 5.0, ""),
    ("softmax", "causal", 256, 1.0, 0.5, 3.0, 1.25, ""),
    ("softmax", "causal", 4096, 60.0, 8.0, 170.0, 20.0, ""),
    ("linear", "causal", 256, 0.75, 0.25, 2.5, 0.75, ""),
    ("linear", "causal", 1024, 3.0, 1.0, "", 3.0, ""),  # fwd_bwd_ms empty: left out of that line
    ("linear", "causal", 4096, 12.0, 4.0, 40.0, 12.0, ""),
    ("linformer", "bidirectional", 256, 1.5, 0.5, 4.0, 1.0, ""),
    ("linformer", "bidirectional", 4096, "", "", "", "", "out of memory"),  # skipped
    ("linformer", "bidirectional", 1024, 6.0, 2.0, 16.0, 4.0, ""),
    ("softmax", "bidirectional", 256, 1.25, 0.5, 3.5, 1.25, ""),
]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def main():
    work = tempfile.mkdtemp()
    try:
        path = os.path.join(work, "bench.csv")
        with open(path, "w") as f:
            f.write(HEADER + "\n")
            for p, mode, T, fwd, fmib, fb, fbmib, note in ROWS:
                f.write(f"{p},,{mode},{T},1,256,4,2,3,{fwd},{fmib},{fb},{fbmib},,{note}\n")
        dump, png = os.path.join(work, "d.json"), os.path.join(work, "b.png")
        r = subprocess.run([sys.executable, SCRIPT, path, "-o", png, "--dump-data", dump], capture_output=True, text=True)
        if r.returncode != 0:
            check(False, f"plot_attention_bench.py failed: {r.stderr}")
            return
        with open(dump) as f:
            got = json.load(f)

        # Expected: read back with csv, skipped rows out, empty cells out, sorted by T; the label
        # is the plugin plus its mode (the CSV mixes modes).
        want = {}
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row["note"]:
                    continue
                label = f"{row['plugin']} ({row['mode']})"
                for column in ("forward_ms", "fwd_bwd_ms", "forward_tape_mib", "fwd_bwd_tape_mib", "peak_rss_mib"):
                    if row[column]:
                        want.setdefault(column, {}).setdefault(label, []).append((int(row["T"]), float(row[column])))
        for lines in want.values():
            for label in lines:
                lines[label] = {"T": [float(t) for t, _ in sorted(lines[label])], "y": [y for _, y in sorted(lines[label])]}
        check(list(got) == ["forward_ms", "fwd_bwd_ms", "forward_tape_mib", "fwd_bwd_tape_mib"],
              f"panels {list(got)}: want one per measured metric, none for peak_rss_mib")
        check(got == want, f"plotted lines differ from the CSV:\n got  {got}\n want {want}")
        w, h = plot_fixtures.png_size(png)
        check(w > h, f"PNG {w} x {h}: expected two panels side by side per row")

        # --per-token: us/token = 1000 ms / (T batch) of forward and forward + backward, the
        # same points left out; batch 2 halves every value.
        for batch in (1, 2):
            with open(path, "w") as f:
                f.write(HEADER + "\n")
                for p, mode, T, fwd, fmib, fb, fbmib, note in ROWS:
                    f.write(f"{p},,{mode},{T},{batch},256,4,2,3,{fwd},{fmib},{fb},{fbmib},,{note}\n")
            r = subprocess.run([sys.executable, SCRIPT, path, "-o", png, "--dump-data", dump, "--per-token"],
                               capture_output=True, text=True)
            check(r.returncode == 0, f"--per-token failed: {r.stderr}")
            with open(dump) as f:
                got = json.load(f)
            per = {"forward_us_per_token": "forward_ms", "fwd_bwd_us_per_token": "fwd_bwd_ms"}
            want_per = {k: {label: {"T": l["T"], "y": [1e3 * y / (t * batch) for t, y in zip(l["T"], l["y"])]}
                            for label, l in want[col].items()} for k, col in per.items()}
            check(got == want_per, f"--per-token (batch {batch}) lines differ:\n got  {got}\n want {want_per}")

        # Every row skipped: a clear error, no PNG.
        with open(path, "w") as f:
            f.write(HEADER + "\nlinear,,causal,256,1,256,4,2,3,,,,,,out of memory\n")
        os.remove(png)
        r = subprocess.run([sys.executable, SCRIPT, path, "-o", png], capture_output=True, text=True)
        check(r.returncode != 0 and "no measured rows" in r.stderr and not os.path.exists(png), f"all skipped: {r.stderr}")
    finally:
        shutil.rmtree(work)
    print("FAILED" if failures else "ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

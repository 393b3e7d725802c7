"""tools/analysis/plot_bpc_curves.py on real run folders: what it draws equals metrics.jsonl.

    /usr/bin/python3 tests/analysis/test_plot_bpc_curves.py path/to/nanoattn

Two experiments, `alpha` and `beta`, each with a run named `main` (same basename), evaluated
every 5 steps and logged every 7: most val points have no training record at their step. The
test reads metrics.jsonl itself and checks the dumped series (--dump-data): every val point, at
x = step x batch_size x seq_len with --x tokens (the sizes the test wrote into the experiment),
the training loss / ln 2, legends `alpha/main` and `beta/main`; a bare metrics.jsonl; an
inconsistent tokens count refused; and a whole PNG.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools", "analysis", "plot_bpc_curves.py")
sys.path.insert(0, HERE)
import plot_fixtures  # noqa: E402

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def plot(work, *args):
    dump, png = os.path.join(work, "dump.json"), os.path.join(work, "curves.png")
    for f in (dump, png):
        if os.path.exists(f):
            os.remove(f)
    r = subprocess.run([sys.executable, SCRIPT, *args, "--out", png, "--dump-data", dump], capture_output=True, text=True)
    if r.returncode != 0:
        return r, None
    with open(dump) as f:
        return r, json.load(f)


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def main():
    nanoattn = sys.argv[1]
    work = tempfile.mkdtemp()
    try:
        runs = [os.path.join(plot_fixtures.experiment(nanoattn, work, name), "main") for name in ("alpha", "beta")]
        per_step = plot_fixtures.BATCH * plot_fixtures.SEQ

        r, series = plot(work, *runs, "--x", "tokens", "--train")
        check(r.returncode == 0, f"plot_bpc_curves.py failed: {r.stderr}")
        if series is None:
            return
        plot_fixtures.png_size(os.path.join(work, "curves.png"))
        for run, label in zip(runs, ("alpha/main", "beta/main")):
            records = jsonl(os.path.join(run, "metrics.jsonl"))
            train_steps = {r["step"] for r in records if "loss" in r}
            val = [(r["step"], r["val_bpc"]) for r in records if "val_bpc" in r]
            check(any(s not in train_steps for s, _ in val), f"{run}: the test needs val steps without training records")
            got = {s["kind"]: s for s in series if s["run"] == run}
            check(set(got) == {"val", "train"}, f"{run}: series {sorted(got)}")
            v = got.get("val", {})
            check(v.get("label") == label, f"{run}: legend {v.get('label')!r}, want {label!r}")
            check(v.get("step") == [s for s, _ in val], f"{run}: val steps {v.get('step')} vs metrics.jsonl {[s for s, _ in val]}")
            check(v.get("x") == [s * per_step for s, _ in val], f"{run}: val tokens {v.get('x')}")
            check(v.get("y") == [b for _, b in val], f"{run}: val bpc differ from metrics.jsonl")
            t = got.get("train", {})
            loss = [(r["step"], r["loss"]) for r in records if "loss" in r]
            check(t.get("x") == [r["tokens"] for r in records if "loss" in r], f"{run}: train x vs the records' tokens")
            check(len(t.get("y", [])) == len(loss) and all(math.isclose(a, b / math.log(2), rel_tol=1e-12)
                                                          for a, (_, b) in zip(t["y"], loss)),
                  f"{run}: train loss in bits differs from metrics.jsonl's loss / ln 2")

        # --x step, and a bare metrics.jsonl (no config.yaml beside it: tokens from the records).
        bare = os.path.join(work, "bare")
        os.makedirs(bare)
        shutil.copy(os.path.join(runs[0], "metrics.jsonl"), bare)
        r, s2 = plot(work, os.path.join(bare, "metrics.jsonl"), "--x", "tokens")
        check(r.returncode == 0 and s2 and s2[0]["x"] == series[0]["x"], f"bare metrics.jsonl: {r.stderr} {s2}")
        r, s3 = plot(work, runs[0])
        check(r.returncode == 0 and s3 and s3[0]["x"] == s3[0]["step"], "--x step: x is not the step")

        # Tokens that disagree with batch_size x seq_len: refused, not drawn at a wrong place.
        odd = os.path.join(work, "odd", "main")
        shutil.copytree(runs[0], odd)
        with open(os.path.join(odd, "metrics.jsonl"), "w") as f:
            for rec in jsonl(os.path.join(runs[0], "metrics.jsonl")):
                if "tokens" in rec:
                    rec["tokens"] += 1
                f.write(json.dumps(rec) + "\n")
        r, _ = plot(work, odd, "--x", "tokens")
        check(r.returncode != 0 and "tokens per step are not constant" in r.stderr, f"inconsistent tokens: {r.returncode} {r.stderr}")
    finally:
        shutil.rmtree(work)
    print("FAILED" if failures else "ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

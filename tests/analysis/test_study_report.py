"""study_report.py and `nanoattn report` on synthetic studies with known numbers.

    /usr/bin/python3 tests/analysis/test_study_report.py [path/to/nanoattn]

Every expected number is computed here from the values make_study.py wrote (or, for KL, from
the KL files read with h5py), with formulas written out independently of study_stats.py:
means, 95% t-intervals with tabulated t quantiles, paired gaps. Then: the yes/no answer both
ways and the +2% rule, the lever that narrowed the gap most (two studies where different levers
win), a partial study (pending and missing runs), determinism (byte-identical reports; only the
timing section differs between two runs of a study), the PNGs, the generator's HDF5 files
against the real `nanoattn kl`, and the CLI's errors and exit codes. Without the nanoattn
argument the CLI checks are skipped.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(TOP, "tools", "analysis", "study_report.py")
sys.path[:0] = [HERE, os.path.join(TOP, "tools", "analysis")]
import make_study  # noqa: E402
import study_stats  # noqa: E402

# Two-sided 95% t quantiles (dof -> t(0.975)): dof 1 and 2 in closed form, 3 and 4 as tabulated.
T975 = {1: math.tan(math.pi * 0.475), 2: 0.95 / math.sqrt(2 * 0.975 * 0.025), 3: 3.182446305284263, 4: 2.7764451051977987}
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def close(a, b, tol=1e-9):
    return a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(b))


def expect_interval(values):
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, T975[n - 1] * sd / math.sqrt(n)


def report(study, out, *extra):
    r = subprocess.run([sys.executable, SCRIPT, study, "--out", out, *extra], capture_output=True, text=True)
    check(r.returncode == 0, f"study_report.py {study} exited {r.returncode}: {r.stderr[-2000:]}")
    with open(os.path.join(out, "report.json")) as f:
        return json.load(f), open(os.path.join(out, "report.md")).read()


def rows_of(rep, corpus="tiny"):
    return {r["label"]: r for r in rep["corpora"][corpus]["rows"]}


def check_t_quantiles():
    for dof, t in T975.items():
        check(close(study_stats.t975(dof), t, 1e-12), f"t975({dof}) = {study_stats.t975(dof)}, expected {t}")
    # The brief's value for n = 3 (scipy's), 1.6e-10 from the closed form: equal to 1e-9.
    check(close(study_stats.t975(2), 4.302652729911275, 1e-9), "t975(2) vs 4.302652729911275")
    check(abs(study_stats.t975(299) - study_stats.t975(300)) < 3e-5 and 1.959963 < study_stats.t975(10**6) < 1.96,
          "t975 across the switch to the Cornish-Fisher expansion")


def check_full(work):
    study = os.path.join(work, "full")
    truth = make_study.make_study(study)["tiny"]
    rep, md = report(study, os.path.join(work, "full_out"))
    rows = rows_of(rep)
    base = truth["softmax"]
    for label, seeds in truth.items():
        r = rows[label]
        tests = [seeds[s]["test"] for s in sorted(seeds)]
        mean, half = expect_interval(tests)
        check(close(r["test"]["mean"], mean) and close(r["test"]["half_width"], half) and r["test"]["n"] == 3,
              f"{label}: test {r['test']} vs mean {mean} +- {half}")
        check(close(r["best_val"]["mean"], sum(seeds[s]["best_val"] for s in seeds) / 3), f"{label}: best val")
        check(r["params"]["value"] == seeds[1]["params"] and close(r["params"]["ratio"], seeds[1]["params"] / base[1]["params"]),
              f"{label}: params {r['params']}")
        tps = rep["timing"]["corpora"]["tiny"][label]["tokens_per_s"]["mean"]
        check(close(tps, sum(seeds[s]["tokens_per_s"] for s in seeds) / 3), f"{label}: tokens/s in timing")
        for files in r["sources"].values():
            check(all(os.path.isfile(os.path.join(study, f)) for f in files), f"{label}: sources {files} exist")
        if label == "softmax":
            continue
        gm, gh = expect_interval([seeds[s]["test"] - base[s]["test"] for s in sorted(seeds)])
        check(close(r["gap"]["mean"], gm) and close(r["gap"]["half_width"], gh), f"{label}: gap {r['gap']} vs {gm} +- {gh}")
        # KL: each run's mean over the /kl_ab tokens of its file, then the mean over seeds.
        per_run = []
        for s in sorted(seeds):
            with h5py.File(os.path.join(study, seeds[s]["dir"], "kl_vs_softmax.h5"), "r") as f:
                per_run.append(float(f["kl_ab"][()].mean()))
        check(close(r["kl"]["mean"], sum(per_run) / 3, 1e-12) and r["kl"]["n"] == 3, f"{label}: KL {r['kl']['mean']} vs {per_run}")
        check(sorted(r["sources"]["kl"]) == sorted(os.path.join(seeds[s]["dir"], "kl_vs_softmax.h5") for s in seeds),
              f"{label}: KL sources")
        check(close(r["recurrent_check"]["max_abs_diff"], max(seeds[s]["recurrent_abs_diff"] for s in seeds), 1e-6),
              f"{label}: recurrent check")
    # No: delta_big beats softmax but has 5% more parameters; the best matched one is dpfp3 +distill.
    a = rep["corpora"]["tiny"]["answer"]
    check(a["answer"] == "no" and a["variant"] == "dpfp3 +distill", f"no-answer: {a['answer']} {a.get('variant')}")
    missed = rows["dpfp3 +distill"]["test"]["mean"] - rows["softmax"]["test"]["mean"]
    check(close(a["missed_by"], missed) and f"missed by {missed:+.4f}" in md, "missed-by in report.json and report.md")
    check(a["best_lever"] == "feature map vs elu+1" and rep["answer"]["answer"] == "no", f"best lever {a['best_lever']}")
    fm = a["levers"]["feature map vs elu+1"]["best"]
    check(fm["without"] == "elu" and fm["with"] == "dpfp3" and close(fm["narrowing"]["mean"], rows["elu"]["test"]["mean"] - rows["dpfp3"]["test"]["mean"]),
          f"feature-map lever {fm['without']} -> {fm['with']}")
    check(a["levers"]["delta rule"]["best"]["with"] == "delta_dpfp3", "the +5% delta_big is not a lever pair")
    check("No." in md and "| `dpfp3 +distill` |" in md, "report.md rows and answer")
    check_pngs(os.path.join(work, "full_out"))
    return study


def check_pngs(out):
    import matplotlib.image
    for kind in ("val_curves", "test_bpc", "kl_by_position", "params"):
        path = os.path.join(out, f"{kind}_tiny.png")
        ok = os.path.isfile(path)
        if ok:
            data = open(path, "rb").read()
            ok = data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"
            ok = ok and matplotlib.image.imread(path).shape[0] > 100
        check(ok, f"{path} is a valid PNG")


def check_yes_and_levers(work):
    study = os.path.join(work, "yes")
    make_study.make_study(study, tests={"dpfp3 +distill": 1.990})
    rep, md = report(study, study)
    a = rep["corpora"]["tiny"]["answer"]
    check(a["answer"] == "yes" and a["variant"] == "dpfp3 +distill" and rep["answer"]["answer"] == "yes",
          f"yes-answer: {a['answer']} {a.get('variant')}")
    check("**Yes.** `dpfp3 +distill`" in md, "report.md says yes naming the variant")
    # Another study where distillation narrows most: the lever is computed, not fixed.
    study = os.path.join(work, "distill")
    make_study.make_study(study, tests={"elu": 2.20, "dpfp3": 2.15, "dpfp3 +distill": 2.01, "elu_wide": 2.18,
                                        "delta_dpfp3": 2.12})
    rep, _ = report(study, study)
    check(rep["corpora"]["tiny"]["answer"]["best_lever"] == "distillation",
          f"distillation should win: {rep['corpora']['tiny']['answer']['best_lever']}")


def check_partial(work):
    study = os.path.join(work, "partial")
    pending, missing = {("elu", 3), ("softmax", 2)}, {("delta_dpfp3", 1)}
    truth = make_study.make_study(study, pending=pending, missing=missing)["tiny"]
    # Damaged files: a truncated KL file, a summary.json cut mid-write, an entry with no dir or seed.
    with open(os.path.join(study, truth["dpfp3 +distill"][3]["dir"], "kl_vs_softmax.h5"), "r+b") as f:
        f.truncate(100)
    with open(os.path.join(study, truth["elu_wide"][2]["dir"], "summary.json"), "w") as f:
        f.write('{"run": "elu_wide", "test_b')
    with open(os.path.join(study, "study.json")) as f:
        manifest = json.load(f)
    manifest["runs"].append({"corpus": "tiny", "variant": "ghost", "status": "done"})
    make_study.write_json(os.path.join(study, "study.json"), manifest)
    rep, md = report(study, study)
    rows = rows_of(rep)
    excluded = {(e["label"], e["seed"]): e["state"] for e in rep["excluded_runs"]}
    check(excluded == {("elu", 3): "pending", ("softmax", 2): "pending", ("delta_dpfp3", 1): "missing",
                       ("elu_wide", 2): "missing", ("ghost", None): "missing"}, f"excluded runs {excluded}")
    check(rows["dpfp3 +distill"]["kl"]["n"] == 1 and rows["ghost"]["test"]["n"] == 0, "damaged KL file left out")
    check(rows["elu"]["test"]["n"] == 2 and rows["delta_dpfp3"]["test"]["n"] == 2 and rows["softmax"]["test"]["n"] == 2,
          "seed counts of partial rows")
    mean, half = expect_interval([truth["elu"][s]["test"] for s in (1, 2)])
    check(close(rows["elu"]["test"]["mean"], mean) and close(rows["elu"]["test"]["half_width"], half), "partial elu mean")
    # Paired over the seeds both finished: dpfp3 has 1, 2, 3 but softmax only 1, 3.
    gm, gh = expect_interval([truth["dpfp3"][s]["test"] - truth["softmax"][s]["test"] for s in (1, 3)])
    g = rows["dpfp3"]["gap"]
    check(close(g["mean"], gm) and close(g["half_width"], gh) and sorted(g["per_seed"]) == ["1", "3"],
          f"paired gap on common seeds: {g} vs {gm} +- {gh}")
    check(rows["dpfp3"]["kl"]["n"] == 2, "no KL file where the same-seed softmax is pending")
    check("pending" in md and "Provisional" in rep["corpora"]["tiny"]["answer"]["text"], "partial study says so")
    # Nothing finished at all: still a report, with an unknown answer.
    study = os.path.join(work, "none")
    make_study.make_study(study, pending={(v["label"], s) for v in make_study.VARIANTS for s in (1, 2, 3)})
    rep, _ = report(study, study)
    check(rep["answer"]["answer"] == "unknown" and rep["counts"]["done"] == 0, "a study with no finished run")
    # Only the baselines finished, the variants pending: not a "no" but no answer yet.
    study = os.path.join(work, "baselines_only")
    make_study.make_study(study, pending={(v["label"], s) for v in make_study.VARIANTS if v["label"] != "softmax"
                                          for s in (1, 2, 3)})
    rep, _ = report(study, study)
    check(rep["corpora"]["tiny"]["answer"]["answer"] == "unknown" and "so far" in rep["corpora"]["tiny"]["answer"]["text"],
          f"baselines only: {rep['corpora']['tiny']['answer']['text']}")


def masked(out):
    rep = json.loads(open(os.path.join(out, "report.json")).read())
    del rep["timing"]
    md = re.sub(r"<!-- timing:begin -->.*?<!-- timing:end -->", "", open(os.path.join(out, "report.md")).read(), flags=re.S)
    return json.dumps(rep, sort_keys=True), md


def check_determinism(work, full):
    a, b = os.path.join(work, "det_a"), os.path.join(work, "det_b")
    report(full, a)
    report(full, b)
    for name in ("report.md", "report.json"):
        check(open(os.path.join(a, name), "rb").read() == open(os.path.join(b, name), "rb").read(),
              f"{name} byte-identical on the same folder")
    # The same study with other timings (a killed and restarted study): only timing differs.
    other = os.path.join(work, "retimed")
    make_study.make_study(other, timing_seed=7)
    report(other, os.path.join(work, "det_c"))
    c = os.path.join(work, "det_c")
    check(open(os.path.join(a, "report.md")).read() != open(os.path.join(c, "report.md")).read(),
          "the timing really differs (else the masking check proves nothing)")
    check(masked(a) == masked(c), "reports equal once timing is masked")


def check_generator_against_nanoattn(nanoattn, work, full):
    """make_study's dumps are read by the real `nanoattn kl`, whose KL file matches the generator's."""
    teacher = os.path.join(full, "tiny/softmax/seed1/preds_test.h5")
    run = os.path.join(full, "tiny/elu/seed1")
    out = os.path.join(work, "real_kl.h5")
    r = subprocess.run([nanoattn, "kl", teacher, os.path.join(run, "preds_test.h5"), "--out", out], capture_output=True, text=True)
    check(r.returncode == 0, f"nanoattn kl on generated dumps: {r.stderr}")
    if r.returncode:
        return
    with h5py.File(out, "r") as real, h5py.File(os.path.join(run, "kl_vs_softmax.h5"), "r") as fake:
        check(_all(real) == _all(fake), f"KL datasets: {_all(real)} vs {_all(fake)}")
        check(sorted(real.attrs) == sorted(fake.attrs), f"KL attributes: {sorted(set(real.attrs) ^ set(fake.attrs))}")
        for n in _all(real):
            check(real[n].dtype == fake[n].dtype and real[n].shape == fake[n].shape, f"KL {n}: dtype/shape")
            check(np.allclose(real[n][()], fake[n][()], rtol=1e-9, atol=1e-12), f"KL {n}: values")


def _all(f):
    out = []
    f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(out)


def check_cli(nanoattn, work, full):
    missing = os.path.join(work, "no-such-study")
    r = subprocess.run([nanoattn, "report", missing], capture_output=True, text=True)
    check(r.returncode == 1 and missing in r.stderr and "no such folder" in r.stderr, f"missing folder: {r.returncode} {r.stderr}")
    out = os.path.join(work, "cli_out")
    r = subprocess.run([nanoattn, "report", full, "--out", out], capture_output=True, text=True)
    check(r.returncode == 0 and os.path.isfile(os.path.join(out, "report.md")), f"nanoattn report: {r.returncode} {r.stderr}")
    if r.returncode == 0:
        check(open(os.path.join(out, "report.json")).read() == open(os.path.join(work, "det_a", "report.json")).read(),
              "nanoattn report writes what the script writes")
    not_study = os.path.join(work, "empty")
    os.makedirs(not_study)
    r = subprocess.run([nanoattn, "report", not_study], capture_output=True, text=True)
    check(r.returncode == 1 and "study.json" in r.stderr, f"a folder without study.json: {r.returncode} {r.stderr}")
    # Exit codes propagate: a stand-in script that exits 7.
    fake = os.path.join(work, "fake_analysis")
    os.makedirs(fake)
    with open(os.path.join(fake, "study_report.py"), "w") as f:
        f.write("import sys\nsys.exit(7)\n")
    r = subprocess.run([nanoattn, "report", full], capture_output=True, text=True, env=dict(os.environ, NANOATTN_ANALYSIS_DIR=fake))
    check(r.returncode == 7, f"exit code of the script: {r.returncode}")
    # An interpreter that cannot see Debian's modules (-S: no site-packages) is named with the packages.
    py = os.path.join(work, "python-S")
    with open(py, "w") as f:
        f.write('#!/bin/sh\nexec /usr/bin/python3 -S "$@"\n')
    os.chmod(py, 0o755)
    r = subprocess.run([nanoattn, "report", full], capture_output=True, text=True, env=dict(os.environ, NANOATTN_PYTHON=py))
    check(r.returncode == 1 and "python3-numpy" in r.stderr and "python3-matplotlib" in r.stderr, f"missing modules: {r.stderr}")
    r = subprocess.run([nanoattn, "report", full], capture_output=True, text=True,
                       env=dict(os.environ, NANOATTN_PYTHON=os.path.join(work, "no-python")))
    check(r.returncode == 1 and "python3-h5py" in r.stderr, f"no interpreter: {r.stderr}")


def main():
    nanoattn = sys.argv[1] if len(sys.argv) > 1 else None
    work = tempfile.mkdtemp(prefix="study_report_test.")
    try:
        check_t_quantiles()
        full = check_full(work)
        check_yes_and_levers(work)
        check_partial(work)
        check_determinism(work, full)
        if nanoattn:
            check_generator_against_nanoattn(nanoattn, work, full)
            check_cli(nanoattn, work, full)
        else:
            print("no nanoattn binary given: the CLI checks are skipped")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("study_report: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

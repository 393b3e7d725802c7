#!/usr/bin/python3
"""The research answer of a `nanoattn study` folder: report.md, report.json and plots.

    /usr/bin/python3 tools/analysis/study_report.py STUDY_DIR [--out DIR]     (or: nanoattn report)

Per corpus and variant (plain and distilled are separate rows): params and their ratio to the
softmax baseline, state bytes at the context, best val bpc, test bpc with a 95% Student-t
interval over seeds (n - 1 dof), the gap to softmax (mean of per-seed paired differences
against the baseline of the same seed, with its interval), the mean KL(P_softmax || P_run) over
the test split (mean over seeds of each run's mean over tokens), the recurrent check (max over
seeds of |parallel - recurrent| test bpc); training and generation speed in a separate timing
section. Then the baseline's tuning and the answer in plain words (study_answer.py).

Runs that are pending or missing are listed and left out of every mean; each mean says how many
seeds it has. The same folder gives byte-identical report.md and report.json except for timing:
delete the `timing` key of report.json, and the lines of report.md from `<!-- timing:begin -->`
to `<!-- timing:end -->` (e.g. `sed '/<!-- timing:begin -->/,/<!-- timing:end -->/d'`), and
what is left depends on the runs' results only. Every number in report.json has, next to it,
the files it was computed from (`sources`, relative to STUDY_DIR).

Needs Debian's python3-numpy, python3-h5py and python3-matplotlib (/usr/bin/python3).
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np

import study_answer
import study_load
import study_plots
import study_stats

REPORT_FORMAT_VERSION = 1
METHODS = {
    "interval": "two-sided 95% Student-t interval over seeds: mean +- t(0.975, n-1) * sd / sqrt(n), sd with n-1 "
                "in the denominator; none for n = 1",
    "gap": "per seed: test bpc of the run minus test bpc of the baseline with the same seed (seeds where both "
           "finished); mean and 95% t-interval of those differences",
    "kl": "per run: mean over test tokens of KL(P_softmax_sameSeed || P_run) in bits (the /kl_ab dataset of "
          "kl_vs_softmax.h5); per variant: mean over seeds of those means",
    "kl_band": "per position p: curve = mean over seeds of each seed's mean KL over its tokens at p; band = curve "
               "+- t(0.975, sum_s(n_s - 1)) * sqrt(sum_s var_s / n_s) / S (S seeds, n_s tokens and var_s their "
               "sample variance at p in seed s), treating tokens as independent",
    "val_curves": "per evaluation step: mean over seeds of val bpc, shaded from the min to the max; x = training "
                  "tokens at that step",
    "recurrent_check": "max over seeds of |test_bpc_parallel - test_bpc_recurrent| (recurrent.json)",
    "levers": study_answer.__doc__.split("\n\n")[1].replace("\n", " ").strip(),
    "timing": "mean over seeds of summary.json tokens_per_s (training) and of generate_tokens_per_s "
              "(generate.json: sampling one sequence, recurrent mode for RNN-capable models)",
}


def fmt(x, spec=".4f", none="n/a"):
    return none if x is None else format(x, spec)


def human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def seed_key(seed):
    """Seeds sort as numbers; anything else a manifest holds sorts after them, as text."""
    return (0, seed, "") if isinstance(seed, int) else (1, 0, str(seed))


def file_stem(corpus):
    return re.sub(r"[^A-Za-z0-9._-]", "_", corpus)


# ---- rows ---------------------------------------------------------------------------------

def val_curve_band(runs):
    """[(tokens, mean, min, max)] by evaluation step over the seeds that logged it."""
    by_step = {}
    for r in runs:
        for step, tokens, val in r.get("val_curve", []):
            by_step.setdefault(step, []).append((tokens, val))
    out = []
    for step in sorted(by_step):
        tokens, vals = zip(*by_step[step])
        out.append((math.fsum(tokens) / len(tokens), math.fsum(vals) / len(vals), min(vals), max(vals)))
    return out


def kl_band(runs):
    """(positions, mean, low, high) over the seeds with a KL file (see METHODS["kl_band"])."""
    kls = [r["kl"] for r in runs if "kl" in r]
    if not kls:
        return None
    P = min(len(k["count"]) for k in kls)
    n = np.array([k["count"][:P] for k in kls], dtype=float)
    s = np.array([k["sum"][:P] for k in kls])
    ss = np.array([k["sumsq"][:P] for k in kls])
    with np.errstate(invalid="ignore", divide="ignore"):
        m = s / n
        var = np.maximum(ss - n * m * m, 0.0) / (n - 1)
        se = np.sqrt((var / n).sum(axis=0)) / len(kls)
    mean = m.mean(axis=0)
    dof = (n - 1).sum(axis=0)
    ok = (n >= 2).all(axis=0)
    half = np.array([study_stats.t975(int(d)) * e if good else np.nan for d, e, good in zip(dof, se, ok)])
    return np.arange(P), mean, mean - half, mean + half


def make_row(label, runs, base_by_seed):
    """One table row: a (corpus, label) over its seeds."""
    first = runs[0]
    done = {}
    for r in sorted((r for r in runs if r["state"] == "done"), key=lambda r: seed_key(r["seed"])):
        done.setdefault(r["seed"], r)  # a seed listed twice counts once
    seeds = sorted(done, key=seed_key)
    src = lambda key: sorted(done[s]["files"][key] for s in seeds if key in done[s]["files"])  # noqa: E731
    per_seed = lambda key: {s: done[s][key] for s in seeds if key in done[s]}  # noqa: E731
    jsonable = lambda d: {str(s): v for s, v in d.items()}  # noqa: E731

    test = per_seed("test")
    params = per_seed("params")
    pvals = sorted(set(params.values()))
    state_run = next((done[s] for s in seeds if "state_bytes" in done[s]), None)
    kl = {s: v["mean"] for s, v in per_seed("kl").items()}
    rec = per_seed("recurrent_abs_diff")
    row = {
        "label": label, "variant": first["variant"], "baseline": first["baseline"],
        "distilled": first["distilled"], "recurrent": any(r["recurrent"] for r in runs),
        "override": first["override"] or "",
        "seeds": {"listed": sorted({r["seed"] for r in runs}, key=seed_key), "done": seeds,
                  "excluded": {str(r["seed"]): f"{r['state']}: {r['reason']}" for r in runs if r["state"] != "done"}},
        "params": {"value": params[seeds[0]] if params else None, "per_seed": jsonable(params),
                   "consistent": len(pvals) <= 1, "ratio": None},
        "state": None if state_run is None else {
            "bytes": state_run["state_bytes"], "kind": state_run["state_kind"], "context": state_run["state_context"]},
        "best_val": dict(study_stats.summarize(list(per_seed("best_val").values())),
                         per_seed=jsonable(per_seed("best_val"))),
        "test": dict(study_stats.summarize(list(test.values())), per_seed=jsonable(test)),
        "gap": None,
        "kl": None if first["baseline"] else dict(study_stats.summarize(list(kl.values())), per_seed=jsonable(kl)),
        "recurrent_check": None if not rec else {"max_abs_diff": max(rec.values()), "n": len(rec),
                                                 "per_seed": jsonable(rec)},
        "sources": {k: v for k, v in {
            "params": src("params"), "state": src("state") if state_run else [], "best_val": src("best_val"),
            "test": src("test"), "kl": src("kl"), "recurrent_check": src("recurrent_check"),
            "val_curves": src("val_curve")}.items() if v},
        # for the plots and the answer only (not written to report.json)
        "_test_per_seed": test, "_val_curve": val_curve_band(done.values()), "_kl_band": kl_band(done.values()),
        "_params_breakdown": next((done[s]["params_breakdown"] for s in seeds if "params_breakdown" in done[s]), None),
    }
    if not first["baseline"] and base_by_seed is not None:
        row["gap"] = study_stats.paired({s: r["test"] for s, r in base_by_seed.items()}, test)
        both = sorted(set(base_by_seed) & set(test), key=seed_key)
        row["sources"]["gap"] = sorted([done[s]["files"]["test"] for s in both] +
                                       [base_by_seed[s]["files"]["test"] for s in both])
    timing = {}
    for key in ("tokens_per_s", "generate_tokens_per_s"):
        vals = per_seed(key)
        timing[key] = dict(study_stats.summarize(list(vals.values())), per_seed=jsonable(vals), sources=src(key))
    row["_timing"] = timing
    return row


def corpus_rows(corpus, runs):
    groups = {}
    for r in runs:
        groups.setdefault(r["label"], []).append(r)
    labels = sorted(groups, key=lambda lb: not groups[lb][0]["baseline"])  # baseline first, else manifest order
    base_label = labels[0] if groups[labels[0]][0]["baseline"] else None
    base_by_seed = None
    if base_label is not None:
        base_by_seed = {}
        for r in groups[base_label]:
            if r["state"] == "done":
                base_by_seed.setdefault(r["seed"], r)
    rows = [make_row(lb, groups[lb], base_by_seed) for lb in labels]
    base = rows[0] if base_label is not None else None
    for r in rows:
        r["_signature"] = study_answer.signature(r)
        if base and base["params"]["value"] and r["params"]["value"] is not None:
            r["params"]["ratio"] = r["params"]["value"] / base["params"]["value"]
            r["sources"]["params_ratio"] = sorted(set(r["sources"]["params"] + base["sources"]["params"]))
    return rows, base


def tuning_table(study_dir, corpus_entry, unit):
    """The baseline's tuning runs; best val bpc from each run's summary.json when it has one."""
    out = []
    chosen = corpus_entry.get("chosen") or {}
    for t in corpus_entry.get("tuning") or []:
        rel = t.get("dir") or ""
        summary = study_load.read_json(os.path.join(study_dir, rel, "summary.json")) if rel else None
        value, source = t.get("best_val_bpc"), "study.json"
        if isinstance(summary, dict) and isinstance(summary.get("best_val_" + unit), (int, float)):
            value, source = summary["best_val_" + unit], os.path.join(rel, "summary.json")
        out.append({"dir": rel, "lr": t.get("lr"), "dropout": t.get("dropout"), "status": t.get("status"),
                    "best_val": value if t.get("status") == "done" else None,
                    "source": source if t.get("status") == "done" else None,
                    "chosen": bool(chosen) and t.get("lr") == chosen.get("lr") and t.get("dropout") == chosen.get("dropout")})
    return out


# ---- output -------------------------------------------------------------------------------

def public(row):
    return {k: v for k, v in row.items() if not k.startswith("_")}


def clean(x):
    """JSON-ready: NaN and infinities become null, numpy scalars Python numbers."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def interval_cell(s, signed=False):
    if s is None or s["mean"] is None:
        return "n/a"
    f = "+.4f" if signed else ".4f"
    if s["half_width"] is None:
        return f"{format(s['mean'], f)} (no interval)"
    if signed:
        return f"{format(s['mean'], f)} [{format(s['low'], f)}, {format(s['high'], f)}]"
    return f"{s['mean']:.4f} ± {s['half_width']:.4f}"


def seeds_note(s, n):
    return "" if s is None or s["n"] == n else f" (n={s['n']})"


def corpus_markdown(c, unit):
    rows, lines = c["_rows"], []
    base = c["baseline"] or "none"
    lines += [f"## {c['name']}", ""]
    chosen = c["chosen"]
    if chosen:
        lines += [f"Baseline `{base}` at lr {chosen.get('lr')}, dropout {chosen.get('dropout')} (chosen by tuning, below). "
                  f"Intervals are 95% Student-t over seeds (n-1 dof); the gap is the mean of per-seed differences "
                  f"against the baseline of the same seed.", ""]
    lines += [f"| variant | RNN | params | vs baseline | state at context | best val {unit} | test {unit} ± 95% | n | "
              f"gap to {base} [95%] | KL vs {base} (bits) | recurrent check |",
              "|---|:-:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        n = r["test"]["n"]
        st = r["state"]
        state = "n/a" if st is None else f"{human_bytes(st['bytes'])} {st['kind']} @ {st['context']}"
        p = r["params"]
        params = "n/a" if p["value"] is None else str(p["value"]) + ("" if p["consistent"] else " (varies)")
        rc = r["recurrent_check"]
        lines.append("| " + " | ".join([
            f"`{r['label']}`" + (" (baseline)" if r["baseline"] else ""), "yes" if r["recurrent"] else "no", params,
            "n/a" if p["ratio"] is None else f"{p['ratio']:.3f}x", state,
            fmt(r["best_val"]["mean"]) + seeds_note(r["best_val"], n), interval_cell(r["test"]), str(n),
            "" if r["baseline"] else interval_cell(r["gap"], signed=True) + seeds_note(r["gap"], n),
            "" if r["baseline"] else fmt(r["kl"]["mean"]) + seeds_note(r["kl"], n),
            "n/a" if rc is None else f"{rc['max_abs_diff']:.1e} (n={rc['n']})",
        ]) + " |")
    lines += ["", "<!-- timing:begin -->",
              "Timing (wall-clock, varies between runs of the same study; mean over seeds):", "",
              "| variant | training tokens/s | generation tokens/s |", "|---|--:|--:|"]
    for r in rows:
        t = r["_timing"]
        lines.append(f"| `{r['label']}` | {fmt(t['tokens_per_s']['mean'], '.0f')}{seeds_note(t['tokens_per_s'], r['test']['n'])} "
                     f"| {fmt(t['generate_tokens_per_s']['mean'], '.0f')}{seeds_note(t['generate_tokens_per_s'], r['test']['n'])} |")
    lines += ["<!-- timing:end -->", ""]
    if c["tuning"]:
        lines += [f"Tuning of the baseline (best val {unit}; **bold**: chosen):", "",
                  f"| lr | dropout | best val {unit} | status | run |", "|--:|--:|--:|---|---|"]
        for t in c["tuning"]:
            b = "**" if t["chosen"] else ""
            lines.append(f"| {b}{t['lr']}{b} | {b}{t['dropout']}{b} | {fmt(t['best_val'])} | {t['status']} | {t['dir']} |")
        lines.append("")
    excluded = [(r["label"], s, why) for r in rows for s, why in sorted(r["seeds"]["excluded"].items())]
    if excluded:
        lines += [f"Not in the means ({len(excluded)} runs):", ""]
        lines += [f"- `{lb}` seed {s}: {why}" for lb, s, why in excluded]
        lines.append("")
    lines += [f"**Answer for {c['name']}.** {c['answer']['text']}", ""]
    stem = file_stem(c["name"])
    for kind, what in (("val_curves", "validation curves"), ("test_bpc", f"test {unit}"),
                       ("kl_by_position", "KL by position"), ("params", "parameters by group")):
        lines.append(f"![{c['name']}: {what}]({kind}_{stem}.png)")
    lines.append("")
    return lines


def markdown(report, corpora, unit):
    s = report["study"]
    lines = [f"# Study `{s['study']}`: can linear attention (as an RNN) match softmax?", "",
             f"`{s['command']}` at commit {s['commit']}" + (" (quick mode)" if s["quick"] else "") + ". "
             f"Unit: {unit} on the test split, at each run's best-validation checkpoint.", "",
             "## Answer", "", report["answer"]["text"], ""]
    lines += [f"- **{c['name']}**: {c['answer']['text']}" for c in corpora]
    lines += ["", f"Runs: {report['counts']['done']} finished, {report['counts']['excluded']} pending or missing "
              "(left out of every mean).", ""]
    for c in corpora:
        lines += corpus_markdown(c, unit)
    lines += ["## Methods", ""] + [f"- **{k}**: {v}" for k, v in sorted(METHODS.items())] + [
        "", "Every number is in report.json with the files it was computed from (`sources`). To compare two reports "
        "without timing: delete report.json's `timing` key and report.md's lines from `<!-- timing:begin -->` to "
        "`<!-- timing:end -->`.", ""]
    return "\n".join(lines)


def write_atomic(path, text):
    """A reader (or a killed report) sees the old file or the new one, never half of one."""
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def build(study_dir, out_dir):
    manifest, unit, runs = study_load.load_study(study_dir)
    names = [c.get("name") for c in manifest.get("corpora") or [] if isinstance(c, dict)]
    names += [r["corpus"] for r in runs if r["corpus"] not in names]
    entries = {c.get("name"): c for c in manifest.get("corpora") or [] if isinstance(c, dict)}
    corpora = []
    for name in names:
        rows, base = corpus_rows(name, [r for r in runs if r["corpus"] == name]) if any(
            r["corpus"] == name for r in runs) else ([], None)
        c = {"name": name, "baseline": base["label"] if base else None, "_rows": rows,
             "chosen": (entries.get(name) or {}).get("chosen"),
             "tuning": tuning_table(study_dir, entries.get(name) or {}, unit)}
        c["answer"] = study_answer.corpus_answer(rows, unit)
        stem = file_stem(name)
        c["plots"] = {k: f"{k}_{stem}.png" for k in ("val_curves", "test_bpc", "kl_by_position", "params")}
        corpora.append(c)

    done = sum(r["state"] == "done" for r in runs)
    report = {
        "format": "nanoattn-study-report", "format_version": REPORT_FORMAT_VERSION,
        "study": {k: manifest.get(k) for k in ("study", "unit", "quick", "command", "commit")},
        "methods": METHODS,
        "counts": {"runs": len(runs), "done": done, "excluded": len(runs) - done},
        "excluded_runs": [{"corpus": r["corpus"], "label": r["label"], "seed": r["seed"], "dir": r["dir"],
                           "state": r["state"], "reason": r["reason"]} for r in runs if r["state"] != "done"],
        "answer": study_answer.overall_answer({c["name"]: c["answer"] for c in corpora}),
        "corpora": {c["name"]: {"baseline": c["baseline"], "chosen": c["chosen"], "tuning": c["tuning"],
                                "answer": c["answer"], "plots": c["plots"], "rows": [public(r) for r in c["_rows"]]}
                    for c in corpora},
        "timing": {"note": "wall-clock numbers: they differ between runs of the same study; delete this key to compare",
                   "corpora": {c["name"]: {r["label"]: r["_timing"] for r in c["_rows"]} for c in corpora}},
    }
    os.makedirs(out_dir, exist_ok=True)
    write_atomic(os.path.join(out_dir, "report.json"),
                 json.dumps(clean(report), sort_keys=True, indent=1, allow_nan=False) + "\n")
    write_atomic(os.path.join(out_dir, "report.md"), markdown(report, corpora, unit))
    for c in corpora:
        rows, base = c["_rows"], next((r for r in c["_rows"] if r["baseline"]), None)
        p = {k: os.path.join(out_dir, v) for k, v in c["plots"].items()}
        study_plots.val_curves(p["val_curves"], c["name"], unit, rows)
        study_plots.test_bpc(p["test_bpc"], c["name"], unit, rows, base)
        study_plots.kl_by_position(p["kl_by_position"], c["name"], [r for r in rows if not r["baseline"]])
        study_plots.params(p["params"], c["name"], rows)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", help="the folder `nanoattn study` wrote (holds study.json)")
    ap.add_argument("--out", help="where to write report.md, report.json and the PNGs (default: STUDY_DIR)")
    a = ap.parse_args()
    try:
        report = build(a.study, a.out or a.study)
    except study_load.StudyError as e:
        print(f"study_report: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # an output folder that cannot be written
        print(f"study_report: error: {e.filename or a.out}: cannot write the report ({e.strerror}): choose a writable "
              "--out folder", file=sys.stderr)
        return 1
    out = a.out or a.study
    print(f"{os.path.join(out, 'report.md')}: {report['answer']['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

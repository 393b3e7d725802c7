"""Reads a study folder (study.json + one nanoattn run folder per run) into plain dicts.

Nothing here raises on a partial study: a run whose manifest status is not "done", whose folder
or summary.json is missing, or whose test bpc is absent is kept with its `state` and `reason`
and left out of every mean. Optional files (cost.json, KL file, recurrent.json, generate.json)
that are missing only leave their own numbers out. Paths are relative to the study folder, so
the report does not depend on where the folder is.
"""
import json
import math
import os

import h5py
import numpy as np


class StudyError(Exception):
    """A study that cannot be reported at all (no manifest, or one that is not JSON)."""


def _finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def read_json(path):
    """The parsed JSON object, or None if the file is missing, not valid JSON or not an object."""
    try:
        with open(path) as f:
            obj = json.load(f)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def read_metrics(path):
    """The records of a metrics.jsonl; a line that does not parse (a run killed mid-write) is
    skipped. None if the file is missing."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    records = []
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and isinstance(r.get("step"), int):
            records.append(r)
    return records


def read_kl(path):
    """Per-token KL(P_softmax || P_run) of a KL file: its mean over tokens and, by context
    position, the count, sum and sum of squares (for the by-position bands). None if the file is
    missing or not a readable nanoattn KL file."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != "nanoattn-kl":
                return None
            kl = f["kl_ab"][()].astype(np.float64)
            pos = f["positions"][()].astype(np.int64)
    except Exception:  # noqa: BLE001 (h5py raises OSError, KeyError, ValueError...: any unreadable file is "no KL")
        return None
    if kl.ndim != 1 or kl.size == 0 or kl.shape != pos.shape or pos.min() < 0:
        return None
    return {"mean": float(np.mean(kl)), "tokens": int(kl.size),
            "count": np.bincount(pos), "sum": np.bincount(pos, kl), "sumsq": np.bincount(pos, kl * kl)}


def load_manifest(study_dir):
    if not os.path.isdir(study_dir):
        raise StudyError(f"{study_dir}: no such folder: give the folder `nanoattn study` wrote")
    path = os.path.join(study_dir, "study.json")
    if not os.path.isfile(path):
        raise StudyError(f"{path}: missing: {study_dir} is not a study folder (`nanoattn study` writes study.json first)")
    m = read_json(path)
    if not isinstance(m, dict) or not isinstance(m.get("runs"), list):
        raise StudyError(f"{path}: not a study manifest (a JSON object with a 'runs' list)")
    return m


def load_run(study_dir, entry, unit):
    """One manifest entry with what its folder holds. `files` maps each kind of value to the file
    (relative to the study folder) it was read from."""
    rel = entry.get("dir") or ""
    run = {k: entry.get(k) for k in ("seed", "override")}
    run["corpus"] = str(entry.get("corpus") or "(no corpus)")
    run["variant"] = str(entry.get("variant") or entry.get("label") or "(no variant)")
    run["label"] = str(entry.get("label") or run["variant"])
    if not isinstance(run["override"], str):
        run["override"] = ""
    run.update(dir=rel, baseline=bool(entry.get("baseline")), distilled=bool(entry.get("distilled")),
               recurrent=bool(entry.get("recurrent")), status=entry.get("status"), files={})
    folder = os.path.join(study_dir, rel)
    f = lambda name: os.path.join(rel, name)  # noqa: E731

    summary = read_json(os.path.join(folder, "summary.json")) if rel else None
    if run["status"] != "done":
        run["state"], run["reason"] = "pending", f"status '{run['status']}' in study.json"
    elif not rel or not os.path.isdir(folder):
        run["state"], run["reason"] = "missing", f"no folder {rel or '(no dir in study.json)'}"
    elif summary is None:
        run["state"], run["reason"] = "missing", f"no readable {f('summary.json')}"
    elif not _finite(summary.get("test_" + unit)):
        run["state"], run["reason"] = "missing", f"{f('summary.json')} has no test_{unit}"
    else:
        run["state"], run["reason"] = "done", None
    if run["state"] != "done":
        return run

    run["test"] = summary["test_" + unit]
    run["files"]["test"] = f("summary.json")
    if _finite(summary.get("best_val_" + unit)):
        run["best_val"] = summary["best_val_" + unit]
        run["files"]["best_val"] = f("summary.json")
    run["finished"] = summary.get("finished")
    if _finite(summary.get("tokens_per_s")):
        run["tokens_per_s"] = summary["tokens_per_s"]
        run["files"]["tokens_per_s"] = f("summary.json")

    cost = read_json(os.path.join(folder, "cost.json"))
    if isinstance(cost, dict) and isinstance(cost.get("params"), dict) and _finite(cost["params"].get("total")):
        run["params"] = int(cost["params"]["total"])
        run["params_breakdown"] = {k: int(v) for k, v in cost["params"].items() if k != "total" and _finite(v)}
        run["files"]["params"] = f("cost.json")
        if _finite(cost.get("state_bytes")):
            run["state_bytes"] = int(cost["state_bytes"])
            run["state_kind"] = cost.get("state_kind")
            run["state_context"] = cost.get("state_context")
            run["files"]["state"] = f("cost.json")
    elif _finite(summary.get("params")):
        run["params"] = int(summary["params"])
        run["files"]["params"] = f("summary.json")

    metrics = read_metrics(os.path.join(folder, "metrics.jsonl"))
    if metrics:
        run["val_curve"] = val_curve(metrics, unit)
        run["files"]["val_curve"] = f("metrics.jsonl")

    if not run["baseline"]:
        kl = read_kl(os.path.join(folder, "kl_vs_softmax.h5"))
        if kl is not None:
            run["kl"] = kl
            run["files"]["kl"] = f("kl_vs_softmax.h5")

    rec = read_json(os.path.join(folder, "recurrent.json")) if run["recurrent"] else None
    if isinstance(rec, dict) and _finite(rec.get("test_bpc_parallel")) and _finite(rec.get("test_bpc_recurrent")):
        run["recurrent_abs_diff"] = abs(rec["test_bpc_parallel"] - rec["test_bpc_recurrent"])
        run["files"]["recurrent_check"] = f("recurrent.json")
    # generate.json (every run: recurrent mode for RNN-capable models); older studies kept an RNN
    # model's speed in recurrent.json.
    gen_name = "generate.json"
    gen = read_json(os.path.join(folder, gen_name))
    if not (isinstance(gen, dict) and _finite(gen.get("generate_tokens_per_s"))) and run["recurrent"]:
        gen_name, gen = "recurrent.json", rec
    if isinstance(gen, dict) and _finite(gen.get("generate_tokens_per_s")):
        run["generate_tokens_per_s"] = gen["generate_tokens_per_s"]
        run["files"]["generate_tokens_per_s"] = f(gen_name)
    return run


def val_curve(records, unit):
    """[(step, training tokens, val bpc)] from metrics.jsonl. An evaluation's tokens are those of
    the training record at its step, else step x the tokens per step of the training records."""
    tokens_at = {r["step"]: r["tokens"] for r in records if _finite(r.get("tokens"))}
    per_step = [t / s for s, t in tokens_at.items() if s > 0]
    rate = per_step[-1] if per_step else math.nan
    return [(r["step"], tokens_at.get(r["step"], r["step"] * rate), r["val_" + unit])
            for r in records if _finite(r.get("val_" + unit))]


def load_study(study_dir):
    m = load_manifest(study_dir)
    unit = m.get("unit") or "bpc"
    runs = [load_run(study_dir, e, unit) for e in m["runs"] if isinstance(e, dict)]
    return m, unit, runs

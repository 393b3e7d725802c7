"""The research answer of a study, computed from the report's rows: can an RNN-capable variant
with at most 2% more parameters than the softmax baseline match its test bpc, and if not, which
lever (feature map vs elu+1, wider keys, the delta rule, distillation) narrowed the gap most.

A lever is measured on pairs of rows that differ in that lever only, read off each variant's
model override (plugin, feature_map, key_dim) and its `distilled` flag, never off its name: the
effect is the mean over seeds of test_bpc(without) - test_bpc(with) on the seeds both finished
(positive: the lever narrowed the gap), with its 95% t-interval. Only rows within +2% of the
baseline's parameters take part, so that a lever is not credited with what more parameters did.
"""
import re

import study_stats

PARAMS_SLACK = 1.02  # "parameter-matched": at most 2% more than the baseline
DEFAULT_FEATURE_MAP = {"linear": "elu", "delta": "dpfp"}  # the plugins' defaults (plugins/*/*.cpp)
LEVERS = ["feature map vs elu+1", "wider keys", "delta rule", "distillation"]

_OPTION = re.compile(r"([A-Za-z_]\w*)\s*:\s*([^\s,{}\[\]#'\"][^,{}\[\]#\n]*)")


def override_options(text):
    """`key: scalar` pairs of a YAML override, flow or block style (the last one wins). Enough to
    read plugin, feature_map and key_dim without a YAML library."""
    return {k: v.strip() for k, v in _OPTION.findall(text or "")}


def signature(row):
    """(plugin, feature map, wider keys, distilled) of a row."""
    o = override_options(row["override"])
    plugin = "softmax" if row["baseline"] else o.get("plugin", "linear")
    try:
        wide = int(o.get("key_dim", "0"), 0) > 0
    except ValueError:
        wide = False
    return {"plugin": plugin, "feature_map": o.get("feature_map", DEFAULT_FEATURE_MAP.get(plugin)),
            "wide_keys": wide, "distilled": row["distilled"]}


def lever_of(a, b):
    """The lever that turns row a into row b, if they differ in exactly that one."""
    sa, sb = a["_signature"], b["_signature"]
    same = lambda *keys: all(sa[k] == sb[k] for k in keys)  # noqa: E731
    if a["baseline"] or b["baseline"]:
        return None
    if a["variant"] == b["variant"] and not sa["distilled"] and sb["distilled"]:
        return "distillation"
    if sa["plugin"] == sb["plugin"] == "linear" and sa["feature_map"] == "elu" and sb["feature_map"] != "elu" \
            and same("wide_keys", "distilled"):
        return "feature map vs elu+1"
    if same("plugin", "feature_map", "distilled") and not sa["wide_keys"] and sb["wide_keys"]:
        return "wider keys"
    if sa["plugin"] == "linear" and sb["plugin"] == "delta" and same("feature_map", "wide_keys", "distilled"):
        return "delta rule"
    return None


def levers(rows):
    """{lever: {"pairs": [...], "best": pair or None}}; a pair's effect is summarized over seeds."""
    out = {name: {"pairs": [], "best": None} for name in LEVERS}
    matched = [r for r in rows if r["params"]["ratio"] is not None and r["params"]["ratio"] * 100 <= PARAMS_SLACK * 100]
    for a in matched:
        for b in matched:
            name = lever_of(a, b) if a is not b else None
            if name is None:
                continue
            # paired() gives b - a per seed: a - b is the narrowing.
            effect = study_stats.paired(b["_test_per_seed"], a["_test_per_seed"])
            if effect["n"] == 0:
                continue
            out[name]["pairs"].append({"without": a["label"], "with": b["label"], "narrowing": effect})
    for entry in out.values():
        if entry["pairs"]:
            entry["best"] = max(entry["pairs"], key=lambda p: p["narrowing"]["mean"])  # first of equals
    return out


def _interval(s, signed=True):
    f = "{:+.4f}" if signed else "{:.4f}"
    if s["half_width"] is None:
        return f"{f.format(s['mean'])} (n={s['n']}, no interval)"
    return f"{f.format(s['mean'])}, 95% interval [{f.format(s['low'])}, {f.format(s['high'])}] (n={s['n']})"


def best_lever_text(lever_table):
    bests = [(name, lever_table[name]["best"]) for name in LEVERS if lever_table[name]["best"]]
    if not bests:
        return None, "No lever could be measured: no two variants that differ in one lever finished on a common seed."
    name, pair = max(bests, key=lambda nb: nb[1]["narrowing"]["mean"])
    if pair["narrowing"]["mean"] <= 0:
        return None, "No lever narrowed the gap: each measured one left test bpc the same or worse."
    return name, (f"The lever that narrowed the gap most: **{name}** (`{pair['without']}` -> `{pair['with']}`: "
                  f"test bpc lower by {_interval(pair['narrowing'])}).")


def corpus_answer(rows, unit):
    """{"answer": "yes" | "no" | "unknown", "text", ...} for one corpus."""
    base = next((r for r in rows if r["baseline"]), None)
    lever_table = levers(rows)
    lever, lever_text = best_lever_text(lever_table)
    out = {"levers": lever_table, "best_lever": lever, "rule": (
        f"yes if a row with recurrent: true and params <= {PARAMS_SLACK} x the baseline's has mean test {unit} <= "
        f"the baseline's mean test {unit}")}
    if base is None or base["test"]["n"] == 0 or base["params"]["value"] is None:
        out.update(answer="unknown", text="**Unknown**: the softmax baseline has no finished run with its parameter count.")
        return out
    bmean, bparams = base["test"]["mean"], base["params"]["value"]
    eligible = [r for r in rows if not r["baseline"] and r["recurrent"] and r["test"]["n"] > 0
                and r["params"]["value"] is not None and r["params"]["value"] * 100 <= bparams * 102]
    eligible.sort(key=lambda r: r["test"]["mean"])  # stable: the table's order breaks ties
    out["eligible"] = [r["label"] for r in eligible]
    base_txt = f"{base['label']}'s {bmean:.4f} (n={base['test']['n']}, {bparams} params)"
    winners = [r for r in eligible if r["test"]["mean"] <= bmean]
    if winners:
        w = winners[0]
        out.update(answer="yes", variant=w["label"], text=(
            f"**Yes.** `{w['label']}` runs as an RNN with {w['params']['value']} params "
            f"({w['params']['ratio']:.3f}x the baseline) and reaches mean test {unit} {w['test']['mean']:.4f} "
            f"(n={w['test']['n']}) against {base_txt}; paired gap {_interval(w['gap'])}."
            + (f" Also at or below the baseline: {', '.join('`%s`' % r['label'] for r in winners[1:])}." if winners[1:] else "")))
    elif eligible:
        b = eligible[0]
        out.update(answer="no", variant=b["label"], missed_by=b["test"]["mean"] - bmean, text=(
            f"**No.** The best RNN-capable variant within +2% of the baseline's parameters, `{b['label']}` "
            f"({b['params']['ratio']:.3f}x), missed by {b['test']['mean'] - bmean:+.4f} {unit}: mean test "
            f"{b['test']['mean']:.4f} (n={b['test']['n']}) against {base_txt}; paired gap {_interval(b['gap'])}."))
    elif any(not r["baseline"] and r["recurrent"] and r["seeds"]["excluded"] for r in rows):
        # Candidates exist but none has finished yet: that is no answer, not a no.
        out.update(answer="unknown", variant=None, text=(
            "**Unknown** (so far): no RNN-capable variant has a finished run yet."))
    else:
        out.update(answer="no", variant=None, text=(
            "**No.** No RNN-capable variant within +2% of the baseline's parameters has a finished run."))
    out["text"] += " " + lever_text
    excluded = sum(len(r["seeds"]["excluded"]) for r in rows)
    if excluded:
        out["text"] += f" Provisional: {excluded} run(s) of this corpus are pending or missing."
    return out


def overall_answer(answers):
    """answers: {corpus: corpus_answer}. Yes only if yes on every corpus that has an answer."""
    known = {c: a for c, a in answers.items() if a["answer"] != "unknown"}
    yes = [c for c, a in known.items() if a["answer"] == "yes"]
    no = [c for c, a in known.items() if a["answer"] == "no"]
    unknown = [c for c in answers if c not in known]
    if not known:
        answer, text = "unknown", "**Unknown**: no corpus has an answer yet."
    elif not no:
        answer, text = "yes", f"**Yes** on every corpus with results ({', '.join(yes)})."
    elif not yes:
        answer, text = "no", f"**No** on every corpus with results ({', '.join(no)})."
    else:
        answer, text = "mixed", f"**Mixed**: yes on {', '.join(yes)}; no on {', '.join(no)}."
    if unknown:
        text += f" No answer yet on {', '.join(unknown)}."
    # The lever with the largest mean (over corpora where measured) of its best narrowing.
    means = {}
    for name in LEVERS:
        vals = [a["levers"][name]["best"]["narrowing"]["mean"] for a in answers.values() if a["levers"][name]["best"]]
        if vals:
            means[name] = sum(vals) / len(vals)
    lever = max(means, key=means.get) if means else None  # dict order = LEVERS order: ties go to the first
    if lever is not None and means[lever] > 0:
        text += (f" Across corpora, the lever that narrowed the gap most is **{lever}** (its best pair lowered "
                 f"test bpc by {means[lever]:.4f} on average over the corpora where it was measured).")
    else:
        lever = None
    return {"answer": answer, "text": text, "best_lever": lever, "lever_mean_best_narrowing": means}

"""The study report's four plots per corpus. Each takes the rows the report computed, so a plot
and the tables always show the same numbers; a plot with nothing to show still gets written,
saying so, so that a report's files are the same set whatever finished."""
import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PARAM_GROUPS = ["embeddings", "attention", "feature_map", "feed_forward", "norms", "head", "other"]


def _style(rows):
    """One colour per variant; a distilled row is dashed in its plain twin's colour."""
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    variants = []
    for r in rows:
        if r["variant"] not in variants:
            variants.append(r["variant"])
    return {r["label"]: (colors[variants.index(r["variant"]) % len(colors)], "--" if r["distilled"] else "-")
            for r in rows}


def _save(fig, path, **kw):
    fig.savefig(path, dpi=100, metadata={"Software": None}, **kw)  # no version string: same bytes on any matplotlib
    plt.close(fig)


def _empty(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def val_curves(path, corpus, unit, rows):
    fig, ax = plt.subplots(figsize=(8, 4.8))
    style = _style(rows)
    drawn = False
    for r in rows:
        curve = r["_val_curve"]
        if not curve:
            continue
        x, mean, lo, hi = (np.array(c) for c in zip(*curve))
        color, ls = style[r["label"]]
        ax.plot(x, mean, ls, color=color, marker=".", label=f"{r['label']} (n={r['test']['n']})")
        ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
        drawn = True
    if not drawn:
        _empty(ax, "no finished runs with metrics.jsonl")
    else:
        ax.legend(fontsize=7)
    ax.set_xlabel("training tokens")
    ax.set_ylabel(f"validation {unit}")
    ax.set_title(f"{corpus}: validation {unit}, mean over seeds (shaded: min to max)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def test_bpc(path, corpus, unit, rows, baseline):
    shown = [r for r in rows if r["test"]["n"] > 0]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.4 * max(len(shown), 2)))
    style = _style(rows)
    for i, r in enumerate(shown):
        t = r["test"]
        color = style[r["label"]][0]
        err = [[t["half_width"]], [t["half_width"]]] if t["half_width"] is not None else None
        ax.errorbar([t["mean"]], [i], xerr=err, fmt="o", color=color, capsize=4)
        seeds = list(r["_test_per_seed"].values())
        ax.plot(seeds, [i] * len(seeds), "x", color=color, alpha=0.5, markersize=4)
    b = baseline["test"] if baseline else None
    if b and b["mean"] is not None:
        ax.axvline(b["mean"], color="0.3", linestyle="-", linewidth=1, label=f"{baseline['label']} mean")
        if b["half_width"] is not None:
            ax.axvspan(b["low"], b["high"], color="0.5", alpha=0.12, label=f"{baseline['label']} 95% interval")
        ax.legend(fontsize=7, loc="best")
    if not shown:
        _empty(ax, "no finished runs")
    ax.set_yticks(range(len(shown)), [f"{r['label']} (n={r['test']['n']})" for r in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"test {unit}")
    ax.set_title(f"{corpus}: test {unit}, mean and 95% Student-t interval over seeds (n-1 dof); x: each seed",
                 fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def kl_by_position(path, corpus, rows):
    fig, ax = plt.subplots(figsize=(8, 4.8))
    style = _style(rows)
    drawn = False
    for r in rows:
        band = r["_kl_band"]
        if band is None:
            continue
        pos, mean, lo, hi = band
        color, ls = style[r["label"]]
        ax.plot(pos, mean, ls, color=color, label=f"{r['label']} (n={r['kl']['n']})")
        ax.fill_between(pos, lo, hi, color=color, alpha=0.15, linewidth=0)
        drawn = True
    if not drawn:
        _empty(ax, "no KL files of finished runs")
    else:
        ax.legend(fontsize=7)
    ax.set_xlabel("position in the context window")
    ax.set_ylabel("KL(P_softmax || P_run), bits per token")
    ax.set_title(f"{corpus}: mean KL by position (mean of per-seed means; band: 95% over tokens)", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def params(path, corpus, rows):
    shown = [r for r in rows if r["_params_breakdown"]]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.4 * max(len(shown), 2)))
    left = np.zeros(len(shown))
    for g in PARAM_GROUPS:
        values = np.array([r["_params_breakdown"].get(g, 0) for r in shown], dtype=float)
        if values.any():
            ax.barh(range(len(shown)), values, left=left, label=g)
            left += values
    base = next((r for r in rows if r["baseline"] and r["params"]["value"]), None)
    if base:  # what "parameter-matched" allows
        ax.axvline(base["params"]["value"] * 1.02, color="0.2", linestyle=":", label="baseline + 2%")
    if not shown:
        _empty(ax, "no cost.json of finished runs")
    else:
        ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    ax.set_yticks(range(len(shown)), [r["label"] for r in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("parameters")
    ax.set_title(f"{corpus}: parameters by group (cost.json)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(fig, path, bbox_inches="tight")

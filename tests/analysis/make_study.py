"""Writes synthetic `nanoattn study` folders with known numbers, for testing study_report.py.

    /usr/bin/python3 tests/analysis/make_study.py OUT [--yes] [--partial]   (or import make_study)

The layout is the study contract (study.json + one run folder per run); the HDF5 files follow
docs/FORMATS.md as trainers/dump/prediction_dump.cpp and kl_file.cpp write them: prediction
dumps of the test split (chunked, shuffle + deflate level 1, variable-length UTF-8 strings,
int64 / float64 scalar attributes) and KL files computed from two dumps the way `nanoattn kl`
does (rows renormalised, float64, bits). test_study_report.py checks both against the real
`nanoattn kl`. Values are small fake numbers; make_study() returns them so a test can compute
what the report must say without reading the report's own inputs the report's way.
"""
import argparse
import json
import math
import os

import h5py
import numpy as np

LN2 = math.log(2.0)
SEQ_LEN = 16
VOCAB = list("abcdefgh")
SEED_OFFSET = {1: -0.010, 2: 0.0, 3: 0.013, 4: 0.004}

# label -> variant settings; `noise` scales how far the run's predictions are from softmax's.
VARIANTS = [
    dict(variant="softmax", label="softmax", baseline=True, recurrent=False, distilled=False,
         override="attention: {plugin: softmax, n_heads: 4}", params=10000, test=2.000, noise=0.0),
    dict(variant="elu", label="elu", recurrent=True, override="attention: {plugin: linear}",
         params=10000, test=2.300, noise=1.0),
    dict(variant="dpfp3", label="dpfp3", recurrent=True,
         override="attention: {plugin: linear, feature_map: dpfp, nu: 3}\nfeed_forward: {mult: 3}",
         params=10150, test=2.150, noise=0.7),
    dict(variant="dpfp3", label="dpfp3 +distill", recurrent=True, distilled=True,
         override="attention: {plugin: linear, feature_map: dpfp, nu: 3}\nfeed_forward: {mult: 3}",
         params=10150, test=2.080, noise=0.4),
    dict(variant="elu_wide", label="elu_wide", recurrent=True,
         override="attention:\n  plugin: linear\n  key_dim: 64\n", params=10180, test=2.250, noise=0.9),
    dict(variant="delta_dpfp3", label="delta_dpfp3", recurrent=True,
         override="attention: {plugin: delta, feature_map: dpfp, nu: 3}", params=10190, test=2.100, noise=0.6),
    # Better than softmax but 5% bigger: must not make the answer "yes".
    dict(variant="delta_big", label="delta_big", recurrent=True,
         override="attention: {plugin: delta, feature_map: dpfp, nu: 3}\nd_model: 72", params=10500, test=1.950,
         noise=0.5),
]
GROUPS = {"embeddings": 0.2, "attention": 0.3, "feature_map": 0.0, "feed_forward": 0.4, "norms": 0.02, "head": 0.05}


def jitter(i, seed):
    """A small per-(variant, seed) wobble, so paired differences have a spread."""
    return 0.001 * (((i * 31 + seed * 17) ** 2) % 7 - 3)  # squared: no two variants move in step


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def _rows(f, name, data, chunk):
    shape = (None,) + data.shape[1:]
    f.create_dataset(name, data=data, maxshape=shape, chunks=(min(chunk, len(data)),) + data.shape[1:],
                     shuffle=True, compression="gzip", compression_opts=1)


def _set_attrs(f, attrs):
    for k, v in attrs.items():
        f.attrs[k] = np.int64(v) if isinstance(v, int) else np.float64(v) if isinstance(v, float) else v


def corpus_stream(corpus, n_windows=4):
    rng = np.random.default_rng(sum(map(ord, corpus)))
    return rng.integers(0, len(VOCAB), size=n_windows * SEQ_LEN + 5)  # the last window is partial


def write_dump(path, corpus, run_name, model, step, logits):
    stream = corpus_stream(corpus)
    n = len(stream) - 1
    lp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    lp = lp.astype(np.float32)
    targets = stream[1:].astype(np.int32)
    nll = -lp[np.arange(n), targets]
    with h5py.File(path, "w") as f:
        _rows(f, "tokens", stream[:-1].astype(np.int32), 4 * 1008)
        _rows(f, "targets", targets, 4 * 1008)
        _rows(f, "positions", (np.arange(n) % SEQ_LEN).astype(np.int32), 4 * 1008)
        _rows(f, "nll", nll, 4 * 1008)
        _rows(f, "logprobs", lp, 1008)
        f.create_dataset("vocab", data=VOCAB, dtype=h5py.string_dtype("utf-8"))
        tok = "nanoattn-tokenizer 1\nkind char\nsize %d\n" % len(VOCAB) + "".join(v.encode().hex() + "\n" for v in VOCAB)
        _set_attrs(f, {"format": "nanoattn-predictions", "format_version": 1, "nanoattn_version": "0.1.0",
                       "model": model, "run_name": run_name, "experiment": "synthetic", "config": "synthetic: true\n",
                       "config_sha256": "0" * 64, "checkpoint": "checkpoint.h5", "checkpoint_step": step,
                       "split": "test", "mode": "parallel", "seq_len": SEQ_LEN, "unit": "bpc", "corpus": corpus,
                       "tokenizer": tok, "dtype": "float32", "vocab_size": len(VOCAB), "tokens": n,
                       "bits_per_token": float(nll.astype(np.float64).sum() / n / LN2)})


def _read_dump(path):
    with h5py.File(path, "r") as f:
        lp = f["logprobs"][()].astype(np.float64)
        return (lp - np.log(np.exp(lp).sum(axis=1, keepdims=True)), f["positions"][()], f["nll"][()].astype(np.float64),
                dict(f.attrs))


def write_kl(path, dump_a, dump_b):
    """What `nanoattn kl dump_a dump_b --out path` writes (docs/FORMATS.md, KL files)."""
    la, pos, nll_a, at_a = _read_dump(dump_a)
    lb, _, nll_b, at_b = _read_dump(dump_b)
    pa, pb = np.exp(la), np.exp(lb)
    lm = np.log((pa + pb) / 2)
    kl_ab = (pa * (la - lb)).sum(axis=1) / LN2
    kl_ba = (pb * (lb - la)).sum(axis=1) / LN2
    js = ((pa * (la - lm)).sum(axis=1) + (pb * (lb - lm)).sum(axis=1)) / 2 / LN2
    P = int(pos.max()) + 1
    count = np.bincount(pos, minlength=P)
    by = lambda x: np.bincount(pos, x, minlength=P) / count  # noqa: E731
    bucket = np.array([int(p).bit_length() for p in pos])
    stats = lambda x: [x.mean(), *np.percentile(x, [50, 90, 99]), x.max()]  # noqa: E731
    with h5py.File(path, "w") as f:
        for name, x in (("kl_ab", kl_ab), ("kl_ba", kl_ba), ("js", js)):
            _rows(f, name, x, 4096)
        _rows(f, "positions", pos.astype(np.int32), 4096)
        f["by_position/tokens"] = count.astype(np.int64)
        for name, x in (("kl_ab", kl_ab), ("kl_ba", kl_ba), ("js", js), ("bits_a", nll_a / LN2), ("bits_b", nll_b / LN2)):
            f["by_position/" + name] = by(x)
        bs = sorted(set(bucket))
        f["buckets/first"] = np.array([0 if b == 0 else 1 << (b - 1) for b in bs], dtype=np.int64)
        f["buckets/last"] = np.array([min((1 << b) - 1, P - 1) for b in bs], dtype=np.int64)
        f["buckets/tokens"] = np.array([(bucket == b).sum() for b in bs], dtype=np.int64)
        for name, x in (("kl_ab", kl_ab), ("kl_ba", kl_ba), ("js", js)):
            f["buckets/" + name] = np.array([stats(x[bucket == b]) for b in bs])
            f["buckets/" + name].attrs["columns"] = "mean,median,p90,p99,max"
        for name, x in (("bits_a", nll_a), ("bits_b", nll_b)):
            f["buckets/" + name] = np.array([x[bucket == b].mean() / LN2 for b in bs])
        attrs = {"format": "nanoattn-kl", "format_version": 1, "nanoattn_version": "0.1.0", "units": "bits",
                 "dump_a": dump_a, "dump_b": dump_b, "run_a": at_a["run_name"], "run_b": at_b["run_name"],
                 "model_a": at_a["model"], "model_b": at_b["model"], "split": at_a["split"], "unit": at_a["unit"],
                 "tokens": int(len(pos)), "vocab_size": int(la.shape[1]),
                 "bits_a": float(nll_a.mean() / LN2), "bits_b": float(nll_b.mean() / LN2)}
        for name, x in (("kl_ab", kl_ab), ("kl_ba", kl_ba), ("js", js)):
            for s, v in zip(("mean", "median", "p90", "p99", "max"), stats(x)):
                attrs[f"{name}_{s}"] = float(v)
        _set_attrs(f, attrs)
    return kl_ab


def make_study(root, corpora=("tiny",), seeds=(1, 2, 3), variants=None, tests=None, pending=(), missing=(),
               timing_seed=0, steps=100):
    """Writes a study into `root`. tests: {label: mean test bpc} overrides; pending / missing:
    (label, seed) pairs whose manifest says "pending" (a half-written folder) or "done" with no
    folder. Returns {corpus: {label: {seed: {"test", "best_val", "params", "kl_mean", ...}}}} for
    the runs that finished."""
    variants = [dict(v) for v in (variants or VARIANTS)]
    for v in variants:
        v.setdefault("baseline", False)
        v.setdefault("distilled", False)
        v["test"] = (tests or {}).get(v["label"], v["test"])
    os.makedirs(root, exist_ok=True)
    manifest = {"study": "synthetic", "unit": "bpc", "quick": True, "command": "nanoattn study synthetic.yaml",
                "commit": "0000000", "corpora": [], "runs": []}
    truth = {}
    timing = np.random.default_rng(timing_seed)
    for corpus in corpora:
        tuning = []
        for lr, drop, val, status in ((0.001, 0.0, 2.15, "done"), (0.002, 0.1, 2.05, "done"), (0.004, 0.1, None, "pending")):
            rel = f"{corpus}/tune/lr{lr}-drop{drop}"
            if status == "done":
                os.makedirs(os.path.join(root, rel), exist_ok=True)
                write_json(os.path.join(root, rel, "summary.json"), {"run": "tune", "unit": "bpc", "best_val_bpc": val})
            tuning.append({"dir": rel, "lr": lr, "dropout": drop, "best_val_bpc": val, "status": status})
        manifest["corpora"].append({"name": corpus, "tuning": tuning, "chosen": {"lr": 0.002, "dropout": 0.1}})
        truth[corpus] = {}
        teacher = {}
        for i, v in enumerate(variants):
            truth[corpus][v["label"]] = {}
            for seed in seeds:
                rel = f"{corpus}/{v['label'].replace(' +', '_')}/seed{seed}"
                status = "pending" if (v["label"], seed) in pending else "done"
                manifest["runs"].append({"corpus": corpus, "variant": v["variant"], "label": v["label"],
                                         "baseline": v["baseline"], "distilled": v["distilled"], "seed": seed,
                                         "dir": rel, "recurrent": v["recurrent"], "override": v["override"],
                                         "status": status})
                if (v["label"], seed) in missing:
                    continue
                folder = os.path.join(root, rel)
                os.makedirs(folder, exist_ok=True)
                test = v["test"] + SEED_OFFSET[seed] + jitter(i, seed)
                best_val = test + 0.05
                tokens_per_step = 8 * SEQ_LEN
                with open(os.path.join(folder, "metrics.jsonl"), "w") as f:
                    for step in range(10, steps + 1, 10):
                        if status == "pending" and step > steps // 2:
                            break
                        f.write(json.dumps({"step": step, "tokens": step * tokens_per_step, "loss": 2.0,
                                            "lr": 0.002, "tokens_per_s": 1000.0}) + "\n")
                        if step % 50 == 0:
                            f.write(json.dumps({"step": step, "val_bpc": best_val + 0.3 * (steps - step) / steps}) + "\n")
                    if status == "pending":
                        f.write('{"step": 60, "tok')  # killed mid-line
                        continue
                    f.write(json.dumps({"step": steps, "test_bpc": test}) + "\n")
                params = v["params"]
                breakdown = {g: int(params * share) for g, share in GROUPS.items()}
                breakdown["other"] = params - sum(breakdown.values())
                tps = float(1000 + timing.integers(0, 500))
                write_json(os.path.join(folder, "summary.json"), {
                    "run": v["label"], "unit": "bpc", "plugins": ["x"], "params": params, "steps": steps,
                    "best_step": steps, "val_bpc": best_val, "best_val_bpc": best_val, "test_bpc": test,
                    "val_ppl": 2 ** best_val, "test_ppl": 2 ** test, "tokens_per_s": tps,
                    "train_seconds": steps * tokens_per_step / tps, "finished": True})
                kind = "fast_weights" if v["recurrent"] else "kv_cache"
                state = 4 * 64 * 64 if v["recurrent"] else 4 * 2 * SEQ_LEN * 64
                write_json(os.path.join(folder, "cost.json"), {
                    "params": dict(breakdown, total=params), "train_flops_per_token": 6 * params,
                    "state_bytes": state, "state_kind": kind, "state_context": SEQ_LEN})
                gen = float(2000 + timing.integers(0, 500))
                if v["recurrent"]:
                    diff = 1e-6 * (seed + i)
                    write_json(os.path.join(folder, "recurrent.json"), {
                        "test_bpc_parallel": test, "test_bpc_recurrent": test + diff, "abs_diff": diff,
                        "state_bytes": state, "generate_tokens_per_s": gen, "generate_tokens": 200})
                elif v["baseline"]:
                    write_json(os.path.join(folder, "generate.json"), {
                        "generate_tokens_per_s": gen, "generate_tokens": 200, "state_bytes": state})
                stream = corpus_stream(corpus)
                rng = np.random.default_rng([seed, 99])
                logits = rng.normal(size=(len(stream) - 1, len(VOCAB))) * 2  # the seed's softmax predictions
                pos = (np.arange(len(stream) - 1) % SEQ_LEN)[:, None]
                logits = logits + v["noise"] * (1 + pos / SEQ_LEN) * np.random.default_rng([seed, i]).normal(size=logits.shape)
                dump = os.path.join(folder, "preds_test.h5")
                write_dump(dump, corpus, v["label"], v["variant"], steps, logits)
                t = {"test": test, "best_val": best_val, "params": params, "tokens_per_s": tps,
                     "generate_tokens_per_s": gen, "dir": rel}
                if v["recurrent"]:
                    t["recurrent_abs_diff"] = diff
                if v["baseline"]:
                    teacher[seed] = dump
                elif seed in teacher:
                    kl = write_kl(os.path.join(folder, "kl_vs_softmax.h5"), teacher[seed], dump)
                    t["kl_mean"] = float(np.mean(kl))
                truth[corpus][v["label"]][seed] = t
    write_json(os.path.join(root, "study.json"), manifest)
    return truth


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--yes", action="store_true", help="a distilled variant beats softmax")
    ap.add_argument("--partial", action="store_true", help="some runs pending or missing")
    a = ap.parse_args()
    make_study(a.out, tests={"dpfp3 +distill": 1.990} if a.yes else None,
               pending={("elu", 3), ("dpfp3 +distill", 2)} if a.partial else (),
               missing={("delta_dpfp3", 1)} if a.partial else ())
    print(a.out)


if __name__ == "__main__":
    main()

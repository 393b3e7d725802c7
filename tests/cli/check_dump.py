"""Reads what nanoattn wrote with Debian's h5py and checks it independently, in numpy.

Usage: /usr/bin/python3 check_dump.py A.h5 B.h5 A16.h5 kl.h5 kl.json checkpoint.h5

A.h5, B.h5: float32 dumps of two models on the same split; A16.h5: A's model dumped as
float16; kl.h5 / kl.json: `nanoattn kl A.h5 B.h5 --out kl.h5 --json`; checkpoint.h5: A's.
"""
import json
import sys

import h5py
import numpy as np

LN2 = np.log(2.0)


def check_dump(path, dtype, tol):
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "nanoattn-predictions", f.attrs["format"]
        assert f.attrs["format_version"] == 1
        assert f.attrs["dtype"] == dtype, (path, f.attrs["dtype"])
        for name in ("model", "run_name", "config", "config_sha256", "checkpoint", "split", "unit", "tokenizer"):
            assert isinstance(f.attrs[name], str), (path, name)
        lp_ds = f["logprobs"]
        assert lp_ds.dtype == np.dtype(dtype), (path, lp_ds.dtype)
        # Chunked by rows, shuffle + deflate (gzip in h5py's words): readable without plugins.
        assert lp_ds.chunks is not None and lp_ds.compression == "gzip" and lp_ds.shuffle, path
        lp = lp_ds[()].astype(np.float64)
        tokens, targets, positions = f["tokens"][()], f["targets"][()], f["positions"][()]
        nll = f["nll"][()]
        vocab = [v.decode() if isinstance(v, bytes) else v for v in f["vocab"][()]]
        n, v = lp.shape
        assert n == f.attrs["tokens"] and v == f.attrs["vocab_size"] == len(vocab), path
        assert tokens.shape == targets.shape == positions.shape == nll.shape == (n,), path
        assert n > 0
        sums = np.exp(lp).sum(axis=1)
        worst = np.abs(sums - 1).max()
        assert worst <= tol, f"{path}: a row of exp(logprobs) sums to 1 +- {worst} (allowed {tol})"
        picked = lp[np.arange(n), targets]
        if dtype == "float32":
            assert np.array_equal(nll, (-picked).astype(np.float32)), f"{path}: nll != -logprobs[target]"
        else:  # nll stays float32; the float16 log-probability is rounded to 11 significant bits
            err = np.abs(nll + picked) / np.maximum(np.abs(nll), 1.0)
            assert err.max() <= 2.0**-10, f"{path}: nll != -logprobs[target] to float16 precision ({err.max()})"
        # A token's target is the next token's input inside a window.
        same_window = positions[1:] == positions[:-1] + 1
        assert np.array_equal(targets[:-1][same_window], tokens[1:][same_window]), path
        bits = nll.astype(np.float64).mean() / LN2
        assert abs(bits - f.attrs["bits_per_token"]) < 1e-9, (bits, f.attrs["bits_per_token"])
        print(f"{path}: {n} x {v} {dtype}, rows sum to 1 +- {worst:.2e}, {bits:.4f} bits per token")
        return lp, nll, positions


def divergences(lp_a, lp_b):
    """Per-token KL(A||B), KL(B||A), JS in bits, each row renormalised (as nanoattn does)."""
    a = lp_a - np.log(np.exp(lp_a).sum(axis=1, keepdims=True))
    b = lp_b - np.log(np.exp(lp_b).sum(axis=1, keepdims=True))
    p, q = np.exp(a), np.exp(b)
    log_m = np.log(0.5 * (p + q))
    kl_ab = (p * (a - b)).sum(axis=1) / LN2
    kl_ba = (q * (b - a)).sum(axis=1) / LN2
    js = 0.5 * ((p * (a - log_m)).sum(axis=1) + (q * (b - log_m)).sum(axis=1)) / LN2
    return kl_ab, kl_ba, js


def close(name, got, want, rtol=1e-5):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    bad = np.abs(got - want) > rtol * np.abs(want) + 1e-12
    assert not bad.any(), f"{name}: {bad.sum()} values differ, e.g. nanoattn {got[bad][:3]} vs numpy {want[bad][:3]}"


def main(path_a, path_b, path_a16, path_kl, path_json, path_ck):
    lp_a, nll_a, pos = check_dump(path_a, "float32", 1e-4)
    lp_b, nll_b, _ = check_dump(path_b, "float32", 1e-4)
    lp_16, _, _ = check_dump(path_a16, "float16", 1e-2)
    assert np.abs(lp_16 - lp_a).max() <= 2.0**-11 * np.abs(lp_a).max() + 1e-7, "float16 dump is not A rounded"

    kl_ab, kl_ba, js = divergences(lp_a, lp_b)
    with h5py.File(path_kl, "r") as f, open(path_json) as jf:
        report = json.load(jf)
        assert f.attrs["format"] == "nanoattn-kl" and f.attrs["units"] == "bits"
        close("kl_ab", f["kl_ab"][()], kl_ab)
        close("kl_ba", f["kl_ba"][()], kl_ba)
        close("js", f["js"][()], js)
        assert np.array_equal(f["positions"][()], pos)
        for name, ref in (("kl_ab", kl_ab), ("kl_ba", kl_ba), ("js", js)):
            want = [ref.mean(), np.median(ref), np.percentile(ref, 90), np.percentile(ref, 99), ref.max()]
            got = [report[name][k] for k in ("mean", "median", "p90", "p99", "max")]
            close(name + " summary (--json)", got, want)
            close(name + " mean (kl.h5)", f.attrs[name + "_mean"], ref.mean())
        close("bits A", report["a"]["bits"], nll_a.astype(np.float64).mean() / LN2)
        close("bits B", report["b"]["bits"], nll_b.astype(np.float64).mean() / LN2)
        # Means by context position.
        count = np.bincount(pos)
        assert np.array_equal(f["by_position/tokens"][()], count)
        close("KL by position", f["by_position/kl_ab"][()], np.bincount(pos, kl_ab) / count)
        close("bits A by position", f["by_position/bits_a"][()], np.bincount(pos, nll_a) / count / LN2)
        # The report's bucket statistics: positions 0, 1, 2-3, 4-7, ...
        for bucket, b in zip(report["buckets"], range(len(report["buckets"]))):
            sel = (pos >= bucket["first"]) & (pos <= bucket["last"])
            assert bucket["tokens"] == sel.sum()
            close(f"bucket {b} KL(A||B) p90", bucket["kl_ab"]["p90"], np.percentile(kl_ab[sel], 90))
        # The largest JS divergence is reported first.
        assert report["top"] and report["top"][0]["index"] == int(np.argmax(js)), report["top"][0]
    print(f"KL(A||B) mean {kl_ab.mean():.6f}, KL(B||A) {kl_ba.mean():.6f}, JS {js.mean():.6f} bits: "
          "nanoattn kl matches numpy to 1e-5")

    with h5py.File(path_ck, "r") as f:
        assert f.attrs["format"] == "nanoattn-checkpoint" and f.attrs["format_version"] == 1
        params = {name: ds[()] for name, ds in f["params"].items()}
        assert params and all(p.dtype == np.float32 for p in params.values())
        assert all(np.isfinite(p).all() for p in params.values())
        print(f"{path_ck}: step {f.attrs['step']}, {len(params)} parameter tensors, "
              f"{sum(p.size for p in params.values())} values")


if __name__ == "__main__":
    main(*sys.argv[1:])

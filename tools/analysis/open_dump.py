#!/usr/bin/python3
"""A prediction dump in numpy: paste into a notebook, or run on a dump.

    /usr/bin/python3 tools/analysis/open_dump.py runs/quickstart/linear/preds_val.h5
"""
import sys

import h5py
import numpy as np

path = sys.argv[1] if len(sys.argv) > 1 else "preds_val.h5"
f = h5py.File(path, "r")
print({k: f.attrs[k] for k in ("run_name", "model", "checkpoint_step", "split", "dtype", "tokens", "bits_per_token")})
vocab = np.array(f["vocab"].asstr()[()])                # id -> token text
tokens, targets, positions = f["tokens"][()], f["targets"][()], f["positions"][()]
nll = f["nll"][()]                                      # nats, unsmoothed
print("bits per token:", nll.mean() / np.log(2))

# The log-probabilities are (N, V): read a slice at a time for big splits.
lp = f["logprobs"][:2000].astype(np.float32)            # float16 dumps become float32 here
p = np.exp(lp)
entropy = -(p * lp).sum(axis=1) / np.log(2)             # bits, per token
likeliest = vocab[lp.argmax(axis=1)]
for i in range(40, 48):
    print(f"{positions[i]:4d} {vocab[tokens[i]]!r:6} -> {vocab[targets[i]]!r:6} "
          f"p={p[i, targets[i]]:.3f}  likeliest {likeliest[i]!r:6} entropy {entropy[i]:.2f} bits")

# Bits per token by position in the context window.
by_pos = np.bincount(positions, nll) / np.bincount(positions) / np.log(2)
some = sorted({0, 1, len(by_pos) // 8, len(by_pos) // 2, len(by_pos) - 1})
print("bits per token at positions", some, np.round(by_pos[some], 3))
f.close()

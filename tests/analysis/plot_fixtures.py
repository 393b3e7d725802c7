"""For the plot tests: real run folders made by the nanoattn CLI in a second or two (a small
generated corpus and a tiny linear-attention model, as tests/cli/tiny_experiment.sh), and a
check that a PNG is whole."""
import os
import random
import struct
import subprocess
import zlib

WORDS = ["the ", "cat ", "sat ", "on ", "a ", "mat. ", "and ", "dog ", "ran\n"]
BATCH, SEQ = 4, 32  # the tests compute tokens per step from these, not from the runs' files

MODEL = """model:
  d_model: 32
  max_len: 32
  blocks:
    - token_embedding: {}
    - positional: {kind: learned}
    - residual: {body: [{attention: {plugin: linear, n_heads: 2}}]}
    - residual: {norm_name: ln2, body: [{feed_forward: {mult: 2}}]}
    - layernorm: {name: ln_f}
    - lm_head: {tied_to: tok}
"""


def experiment(nanoattn, work, name, steps=23, log_every=7, eval_every=5, runs=None, dump=False):
    """Runs experiment `name` in `work` (output in work/out) and returns work/out/<name>."""
    corpus = os.path.join(work, "tiny.txt")
    if not os.path.exists(corpus):
        rng = random.Random(12345)
        with open(corpus, "w") as f:
            f.write("".join(rng.choice(WORDS) for _ in range(4000)))
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write(f"name: {name}\nseed: 3\ndata: {{corpus: tiny.txt, val_fraction: 0.1, test_fraction: 0.1}}\n"
                + MODEL
                + f"train: {{steps: {steps}, batch_size: {BATCH}, seq_len: {SEQ}, lr: 0.01, warmup: 2}}\n"
                + f"eval: {{every: {eval_every}, batch_size: 8{', dump: true' if dump else ''}}}\n"
                + f"log: {{every: {log_every}}}\n" + (runs or ""))
    r = subprocess.run([nanoattn, "run", path, "--out", os.path.join(work, "out")], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"nanoattn run {path} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return os.path.join(work, "out", name)


def png_size(path):
    """(width, height) of a PNG after checking its signature, its IHDR chunk's CRC and that
    matplotlib decodes it; raises ValueError otherwise."""
    with open(path, "rb") as f:
        head = f.read(33)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG")
    if struct.unpack(">I", head[29:33])[0] != zlib.crc32(head[12:29]):
        raise ValueError(f"{path}: bad IHDR CRC")
    import matplotlib.image  # imports pyplot's backend machinery: only when needed
    pixels = matplotlib.image.imread(path)
    width, height = struct.unpack(">II", head[16:24])
    if pixels.shape[:2] != (height, width) or width < 100 or height < 100:
        raise ValueError(f"{path}: {width} x {height}, decoded as {pixels.shape}")
    return width, height

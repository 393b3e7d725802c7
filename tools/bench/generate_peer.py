#!/usr/bin/python3
"""The PyTorch peer's generation speed, timed as `nanoattn bench generate` times it.

Imports ../shared/reference/charlm.py (CharGPT.new_state / step: a KV cache for softmax, the
S, z fast weights for linear), random init, prompt = the corpus's first P characters fed one
step at a time, then N new tokens drawn one at a time (torch.multinomial over the full
softmax, or top-k), each timed from the draw to the next logits, under torch.no_grad. The
learned position table is made P + N long so any length can be generated. Prints one JSON
line: tokens/s (B * N / time), µs/token mean and median per tenth of N, state bytes.

  /usr/bin/python3 tools/bench/generate_peer.py --attn linear --prompt 64 --tokens 1000 [--batch 1]
      [--d-model 128 --n-layer 4 --n-head 4] [--threads 2] [--data FILE]
"""
import argparse, json, os, statistics, sys, time

root = os.path.dirname(os.path.abspath(__file__))
shared = os.path.join(root, "..", "..", "..", "shared")
sys.path.insert(0, os.path.join(shared, "reference"))
import torch  # noqa: E402
import charlm  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attn", default="softmax", choices=["softmax", "linear"])
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--data", default=os.path.join(shared, "data", "tinyshakespeare.txt"))
    a = ap.parse_args()
    if a.tokens < 10:
        sys.exit("--tokens must be >= 10 (times are reported per tenth)")

    core = charlm.set_threads(a.threads)
    torch.manual_seed(a.seed)
    chars, train, _ = charlm.load_data(a.data)
    if a.prompt > len(train):
        sys.exit(f"--prompt {a.prompt} is longer than the corpus's training split ({len(train)} characters)")
    B, P, N = a.batch, a.prompt, a.tokens
    model = charlm.CharGPT(len(chars), a.d_model, a.n_layer, a.n_head, P + N, a.attn).eval()
    n_params = sum(p.numel() for p in model.parameters())
    gen = torch.Generator().manual_seed(a.seed)
    times = []
    with torch.no_grad():
        state = model.new_state(B, P + N)
        t0 = time.perf_counter()
        for i in range(P):
            logits = model.step(train[i].repeat(B, 1), i, state)
        prompt_s = time.perf_counter() - t0
        for n in range(N):
            s = time.perf_counter()
            if a.top_k > 0:
                v, ix = torch.topk(logits, a.top_k, dim=-1)
                nxt = ix.gather(-1, torch.multinomial(torch.softmax(v, -1), 1, generator=gen))
            else:
                nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)  # (B, 1)
            logits = model.step(nxt, P + n, state)
            times.append(time.perf_counter() - s)
    total = sum(times)
    deciles = [1e6 * statistics.median(times[d * N // 10:(d + 1) * N // 10]) for d in range(10)]
    # The cache is allocated for P + N positions up front; count the rows in use, as nanoattn does.
    used = charlm.CharGPT.state_bytes(state, used_T=P + N)
    print(json.dumps({"who": "pytorch", "attn": a.attn, "params": n_params, "threads": a.threads, "batch": B,
                      "prompt": P, "tokens": N, "tokens_per_s": B * N / total, "us_per_token": 1e6 * total / N,
                      "us_per_token_deciles": deciles, "prompt_s": prompt_s, "seconds": total,
                      "state_bytes": used, "state_bytes_allocated": charlm.CharGPT.state_bytes(state),
                      "openblas_core": core, "torch": torch.__version__}))


if __name__ == "__main__":
    main()

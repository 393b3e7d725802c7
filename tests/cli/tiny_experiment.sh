# Sourced by the CLI tests: writes $work/tiny.txt (generated text with word structure) and
# $work/exp.yaml (a tiny linear-attention experiment; STEPS and CHECKPOINT_EVERY override).
python_free_text() {  # words drawn by a fixed LCG: no interpreter needed
  local words=("the " "cat " "sat " "on " "a " "mat. " "and " "dog " "ran
") x=12345 out=""
  for ((i = 0; i < 4000; i++)); do
    x=$(((x * 1103515245 + 12345) % 2147483648))
    out+=${words[$((x / 65536 % 9))]}
  done
  printf '%s' "$out"
}
python_free_text > "$work/tiny.txt"
cat > "$work/exp.yaml" <<YAML
name: tiny
seed: 3
data: {corpus: tiny.txt, val_fraction: 0.1, test_fraction: 0.1}
model:
  d_model: 32
  max_len: 32
  blocks:
    - token_embedding: {}
    - positional: {kind: learned}
    - repeat:
        n: 2
        blocks:
          - residual: {body: [{attention: {plugin: linear, n_heads: 2}}]}
          - residual: {norm_name: ln2, body: [{feed_forward: {mult: 2}}]}
    - layernorm: {name: ln_f}
    - lm_head: {tied_to: tok}
train: {steps: ${STEPS:-40}, batch_size: 4, seq_len: 32, lr: 0.01, warmup: 2, checkpoint_every: ${CHECKPOINT_EVERY:-0}}
eval: {every: 0, batch_size: 8}
log: {every: 10}
YAML

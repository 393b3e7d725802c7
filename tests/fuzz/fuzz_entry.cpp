#include "fuzz_entry.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "experiment/experiment.h"
#include "nanoattn/error.h"

namespace na::fuzz {
namespace {

// The name the inputs go by: relative paths in them resolve against the working folder, and
// nothing is read from disk (load_experiment_text parses the text in memory).
const char* const kPath = "fuzz.yaml";

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// A loaded experiment's runs, written out as config.yaml and checkpoints hold them, must read
// back (saved_run, --resume) to the same settings.
void check_round_trip(const Experiment& exp) {
  for (const RunConfig& r : exp.runs) {
    const std::string text = r.resolved_text();
    std::string again;
    try {
      again = parse_run(YAML::Load(text), "resolved", ".").resolved_text();
    } catch (const std::exception& e) {
      finding("run '" + r.name + "': its resolved settings do not read back: " + e.what() + "\n" + text);
    }
    if (again != text) finding("run '" + r.name + "': resolved settings change when read back:\n" + text +
                               "--- read back as ---\n" + again);
  }
}

void load_checked(const std::string& text, const std::vector<std::string>& sets) {
  Experiment exp;
  try {
    exp = load_experiment_text(text, kPath, sets);
  } catch (const Error&) {
    return;  // bad input, told as it should be
  }
  check_round_trip(exp);
}

// The base of the --set harness: two runs (overrides go to each), lists to index into.
const char* const kSetBase = R"(name: tiny
seed: 3
data: {corpus: tiny.txt, val_fraction: 0.1, test_fraction: 0.1}
model:
  d_model: 32
  max_len: 32
  attention: {plugin: linear, n_heads: 2}
  blocks:
    - token_embedding: {}
    - positional: {kind: learned}
    - repeat:
        n: 2
        blocks:
          - residual: {body: [{attention: {}}]}
          - residual: {norm_name: ln2, body: [{feed_forward: {mult: 2}}]}
    - layernorm: {name: ln_f}
    - lm_head: {tied_to: tok}
train: {steps: 40, batch_size: 4, seq_len: 32, lr: 0.01, warmup: 2, checkpoint_every: 0}
eval: {every: 0, batch_size: 8}
log: {every: 10}
runs:
  - name: linear
  - name: softmax
    model: {attention: {plugin: softmax}}
    compare_to: linear
)";

}  // namespace

void experiment_input(const uint8_t* data, size_t size) {
  load_checked(std::string(reinterpret_cast<const char*>(data), size), {});
}

void set_input(const uint8_t* data, size_t size) {
  std::vector<std::string> sets;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (size_t start = 0; start <= text.size();) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    if (nl > start) sets.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  load_checked(kSetBase, sets);
}

}  // namespace na::fuzz

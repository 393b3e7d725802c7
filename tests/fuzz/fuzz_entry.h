// The fuzz harnesses' entry functions, shared by the libFuzzer targets (clang, tools/fuzz.sh)
// and the regression replay in the normal suite (fuzz_replay, any compiler).
//
// Each returns normally when the input is accepted or rejected with na::Error, the expected
// outcome of bad input. Anything else is a finding: another exception escapes, or a broken
// invariant aborts (and the sanitizers report crashes, leaks and undefined behaviour).
#pragma once
#include <cstddef>
#include <cstdint>

namespace na::fuzz {

// The bytes are an experiment file's text: load_experiment_text, then every run's resolved
// settings (what config.yaml and checkpoints hold) must read back through parse_run to the same
// text.
void experiment_input(const uint8_t* data, size_t size);

// The bytes are `--set KEY=VALUE` assignments, one per line, applied to a fixed two-run
// experiment (tests/cli/tiny_experiment.sh's model) through load_experiment_text; then the same
// round trip as experiment_input.
void set_input(const uint8_t* data, size_t size);

}  // namespace na::fuzz

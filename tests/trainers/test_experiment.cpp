// Experiment files: runs as overrides, --set, defaults, and an error naming file:line:col and the
// valid choices for each kind of bad input.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "experiment/experiment.h"
#include "nanoattn/error.h"

namespace fs = std::filesystem;
using namespace na;

namespace {

const char* kBase = R"(name: study
seed: 7
data: {corpus: tiny.txt, val_fraction: 0.1}
model:
  d_model: 16
  max_len: 8
  blocks:
    - token_embedding: {}
    - attention: {plugin: softmax, n_heads: 2}
train: {steps: 50, batch_size: 4, seq_len: 8, warmup: 5}
eval: {every: 10}
runs:
  - name: softmax
  - name: linear
    model: {blocks: [{token_embedding: {}}, {attention: {plugin: linear}}]}
    train: {lr: 0.002}
)";

struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("na_exp_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(dir); }
  ~TempDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
};

// The error message of load_experiment, or "" if it succeeded.
std::string error_of(const std::string& path, const std::vector<std::string>& sets = {}) {
  try {
    load_experiment(path, sets);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string with(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("runs are the shared sections deep-merged with each run's overrides") {
  TempDir t;
  Experiment e = load_experiment(t.write("study.yaml", kBase));
  REQUIRE(e.runs.size() == 2);
  CHECK(e.name == "study");
  const RunConfig &a = e.runs[0], &b = e.runs[1];
  CHECK(a.name == "softmax");
  CHECK(b.name == "linear");
  CHECK(a.experiment == "study");
  CHECK(a.seed == 7);
  CHECK(a.train.lr == doctest::Approx(1e-3));   // default
  CHECK(b.train.lr == doctest::Approx(0.002));  // override
  CHECK(b.train.steps == 50);                   // merged, not replaced
  CHECK(a.model["blocks"][1]["attention"]["plugin"].Scalar() == "softmax");
  CHECK(b.model["blocks"][1]["attention"]["plugin"].Scalar() == "linear");  // lists replace
  CHECK(b.model["d_model"].as<int>() == 16);
  CHECK(a.data.name_or_path == (t.dir / "tiny.txt").string());  // relative to the file
  CHECK(a.data.val_fraction == doctest::Approx(0.1));
  CHECK(a.eval.every == 10);
  CHECK(a.eval_seq_len() == 8);
}

TEST_CASE("--set overrides every run, through maps and list indices") {
  TempDir t;
  const std::string path = t.write("study.yaml", kBase);
  Experiment e = load_experiment(path, {"train.steps=9", "model.blocks.1.attention.n_heads=4", "log.tensorboard=true",
                                        "data.corpus=kjv"});
  for (const RunConfig& r : e.runs) {
    CHECK(r.train.steps == 9);
    CHECK(r.model["blocks"][1]["attention"]["n_heads"].as<int>() == 4);
    CHECK(r.log.tensorboard);
    CHECK(r.data.name_or_path == "kjv");  // a named corpus stays a name
  }
  CHECK(e.runs[1].model["blocks"][1]["attention"]["plugin"].Scalar() == "linear");
  CHECK(error_of(path, {"train.steps"}).find("is not key.path=value") != std::string::npos);
  CHECK(error_of(path, {"model.blocks.9.x=1"}).find("index 9 is past the end of a list of 2") != std::string::npos);
  CHECK(error_of(path, {"model.blocks.x.y=1"}).find("must be a number") != std::string::npos);
  CHECK(error_of(path, {"train.stpes=5"}).find("unknown key 'stpes'") != std::string::npos);
}

TEST_CASE("the resolved config holds every default and reads back to itself") {
  TempDir t;
  Experiment e = load_experiment(t.write("study.yaml", kBase));
  for (const RunConfig& r : e.runs) {
    const std::string text = r.resolved_text();
    CHECK(text.find("label_smoothing: 0") != std::string::npos);
    CHECK(text.find("warmup: 5") != std::string::npos);
    CHECK(text.find("min_lr_ratio: 0.1") != std::string::npos);
    RunConfig back = parse_run(YAML::Load(text), "saved", "/elsewhere");
    CHECK(back.resolved_text() == text);
    CHECK(back.data.name_or_path == r.data.name_or_path);  // absolute: the folder no longer matters
  }
}

TEST_CASE("the resolved config writes doubles in their shortest round-trip text") {
  TempDir t;
  Experiment e = load_experiment(t.write("study.yaml", kBase));
  RunConfig r = e.runs[0];
  const double denormal = std::numeric_limits<double>::denorm_min() * 3;
  const struct {
    double v;
    const char* text;
  } cases[] = {{0.1, "0.1"}, {1e-8, "1e-08"}, {4e-3, "0.004"}, {1.0 / 3, "0.3333333333333333"},
               {denormal, "1.5e-323"}, {0.30000000000000004, "0.30000000000000004"}, {1.0, "1"}};
  for (const auto& c : cases) {
    CAPTURE(std::string(c.text));
    r.train.lr = c.v;
    r.train.eps = c.v;
    const std::string text = r.resolved_text();
    CHECK(text.find(std::string("  lr: ") + c.text + "\n") != std::string::npos);
    const RunConfig back = parse_run(YAML::Load(text), "saved", "/elsewhere");
    CHECK(back.train.lr == c.v);  // the same double, bit for bit
    CHECK(back.train.eps == c.v);
    CHECK(back.resolved_text() == text);
  }
}

TEST_CASE("config.yaml's provenance block is read back and ignored as a setting") {
  TempDir t;
  Experiment e = load_experiment(t.write("study.yaml", kBase));
  const std::string text = e.runs[0].resolved_text() + "provenance:\n  host: elsewhere\n";
  const RunConfig back = parse_run(YAML::Load(text), "saved", "/elsewhere");
  CHECK(back.resolved_text() == e.runs[0].resolved_text());
}

TEST_CASE("a file without runs is one run") {
  TempDir t;
  std::string text = kBase;
  text = text.substr(0, text.find("runs:"));
  Experiment e = load_experiment(t.write("single.yaml", text));
  REQUIRE(e.runs.size() == 1);
  CHECK(e.runs[0].name == "main");
}

TEST_CASE("bad experiment files: each error names the place and what is valid") {
  TempDir t;
  struct Case {
    const char* what;
    std::string text;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"malformed YAML", with(kBase, "eval: {every: 10}", "eval: {every: 10"), {"bad.yaml:", "malformed YAML"}},
      {"unknown top-level key", with(kBase, "seed: 7", "sed: 7"),
       {"bad.yaml:2:1", "unknown key 'sed'", "valid keys:", "seed", "train"}},
      {"unknown key in a section", with(kBase, "eval: {every: 10}", "eval: {evry: 10}"),
       {"bad.yaml:11:8", "eval: unknown key 'evry'", "every"}},
      {"unknown key in a run", with(kBase, "    train: {lr: 0.002}", "    trian: {lr: 0.002}"),
       {"bad.yaml:16:5", "unknown key 'trian'", "a run has:"}},
      {"unknown key inside a run override", with(kBase, "{lr: 0.002}", "{lr: 0.002, warmpu: 3}"),
       {"bad.yaml:16:32", "train: unknown key 'warmpu'", "warmup"}},
      {"wrong type", with(kBase, "steps: 50", "steps: many"), {"bad.yaml:10:16", "train.steps must be an integer", "'many'"}},
      {"zero size", with(kBase, "batch_size: 4", "batch_size: 0"), {"bad.yaml:10:32", "train.batch_size must be >= 1, got 0"}},
      {"negative size", with(kBase, "seq_len: 8,", "seq_len: -8,"), {"train.seq_len must be >= 1, got -8"}},
      {"bad choice", with(kBase, "val_fraction: 0.1}", "val_fraction: 0.1, tokenizer: bpe}"),
       {"data.tokenizer 'bpe' is not one of: char, word"}},
      {"out of range", with(kBase, "val_fraction: 0.1", "val_fraction: 2"), {"data.val_fraction must be in [0, 0.5], got 2"}},
      {"missing corpus", with(kBase, "corpus: tiny.txt, ", ""), {"bad.yaml:3:7", "data: 'corpus' is required"}},
      {"duplicate run names", with(kBase, "name: linear", "name: softmax"), {"two runs are named 'softmax'"}},
      {"runs not a list", std::string(kBase).substr(0, std::string(kBase).find("runs:")) + "runs: 3\n",
       {"bad.yaml:12:7", "'runs' must be a list"}},
      {"model missing", with(kBase, "model:", "modl:"), {"unknown key 'modl'"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const std::string msg = error_of(t.write("bad.yaml", c.text));
    CAPTURE(msg);
    REQUIRE(!msg.empty());
    for (const std::string& part : c.expected) CHECK(msg.find(part) != std::string::npos);
  }
  CHECK(error_of((t.dir / "absent.yaml").string()).find("no such experiment file") != std::string::npos);
}

TEST_CASE("integers: a fraction or an out-of-range value is refused, never rounded or wrapped") {
  TempDir t;
  const std::string i64 = "(out of range: it must be between -9223372036854775808 and 9223372036854775807)";
  struct Case {
    const char* what;
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"a fraction", with(kBase, "steps: 50", "steps: 2.5"),
       "bad.yaml:10:16: train.steps must be an integer, got '2.5' (a fraction: give a whole number, e.g. 2 or 3)"},
      {"a fraction in exponent form", with(kBase, "every: 10", "every: 15e-1"),
       "bad.yaml:11:15: eval.every must be an integer, got '15e-1' (a fraction"},
      {"too large for 64 bits", with(kBase, "batch_size: 4", "batch_size: 99999999999999999999"),
       "bad.yaml:10:32: train.batch_size must be an integer, got '99999999999999999999' " + i64},
      {"too large, as an exponent", with(kBase, "steps: 50", "steps: 1e30"), "train.steps must be an integer, got '1e30' " + i64},
      {"a negative seed", with(kBase, "seed: 7", "seed: -1"),
       "bad.yaml:2:7: run.seed must be an integer, got '-1' (out of range: it must be between 0 and 18446744073709551615)"},
      {"a seed past 64 bits", with(kBase, "seed: 7", "seed: 18446744073709551616"), "run.seed must be an integer"},
      {"a fraction for a run's override", with(kBase, "{lr: 0.002}", "{lr: 0.002, warmup: 0.5}"),
       "bad.yaml:16:32: train.warmup must be an integer, got '0.5' (a fraction: give a whole number, e.g. 0 or 1)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const std::string msg = error_of(t.write("bad.yaml", c.text));
    CAPTURE(msg);
    CHECK(msg.find(c.expected) != std::string::npos);
  }
  // --set values go through the same rule; a list index must be a whole number too.
  const std::string path = t.write("study.yaml", kBase);
  CHECK(error_of(path, {"train.steps=2.5"}).find("train.steps must be an integer, got '2.5' (a fraction") != std::string::npos);
  CHECK(error_of(path, {"train.checkpoint_every=1e40"}).find("got '1e40' " + i64) != std::string::npos);
  CHECK(error_of(path, {"model.blocks.1x.attention.n_heads=4"})
            .find("'model.blocks.1x.attention.n_heads': '1x' indexes a list, so it must be a number") != std::string::npos);
  CHECK(error_of(path, {"model.blocks.-1.attention.n_heads=4"}).find("'-1' indexes a list") != std::string::npos);
  // An exact whole number is read in any plain form.
  Experiment e = load_experiment(path, {"train.steps=1e3", "seed=0x10", "train.batch_size=8.0", "model.blocks.1e0.attention.n_heads=4"});
  CHECK(e.runs[0].train.steps == 1000);
  CHECK(e.runs[0].seed == 16);
  CHECK(e.runs[0].train.batch_size == 8);
  CHECK(e.runs[0].model["blocks"][1]["attention"]["n_heads"].Scalar() == "4");
  CHECK(load_experiment(t.write("big.yaml", with(kBase, "seed: 7", "seed: 18446744073709551615"))).runs[0].seed ==
        UINT64_MAX);
}

TEST_CASE("compare_to names another run; eval.dump and dump_dtype are checked and resolved") {
  TempDir t;
  const std::string ok = with(kBase, "    train: {lr: 0.002}", "    train: {lr: 0.002}\n    compare_to: softmax");
  Experiment e = load_experiment(t.write("cmp.yaml", with(ok, "eval: {every: 10}", "eval: {every: 10, dump: true}")));
  CHECK(e.runs[1].compare_to == "softmax");
  CHECK(e.runs[0].compare_to.empty());
  CHECK(e.runs[1].eval.dump);
  CHECK(e.runs[1].eval.dump_dtype == "float32");
  const RunConfig back = parse_run(YAML::Load(e.runs[1].resolved_text()), "saved", "/elsewhere");
  CHECK(back.compare_to == "softmax");
  CHECK(back.eval.dump);
  CHECK(load_experiment(t.write("f16.yaml", with(kBase, "eval: {every: 10}", "eval: {dump_dtype: float16}")))
            .runs[0].eval.dump_dtype == "float16");
  // The order of runs does not matter: the reference may come after the run that names it.
  CHECK(error_of(t.write("later.yaml", with(kBase, "  - name: softmax", "  - name: softmax\n    compare_to: linear")))
            .empty());
  const std::string unknown = error_of(t.write("bad.yaml", with(ok, "compare_to: softmax", "compare_to: sofmax")));
  CHECK(unknown.find("bad.yaml:17:17: run 'linear': compare_to: no run is named 'sofmax'; the runs are: softmax, linear") !=
        std::string::npos);
  const std::string self = error_of(t.write("self.yaml", with(ok, "compare_to: softmax", "compare_to: linear")));
  CHECK(self.find("self.yaml:17:17: run 'linear': compare_to names the run itself") != std::string::npos);
  const std::string dtype = error_of(t.write("dt.yaml", with(kBase, "eval: {every: 10}", "eval: {dump_dtype: half}")));
  CHECK(dtype.find("eval.dump_dtype 'half' is not one of: float16, float32") != std::string::npos);
  CHECK(error_of(t.write("flag.yaml", with(kBase, "eval: {every: 10}", "eval: {dump: yes please}")))
            .find("eval.dump must be true or false") != std::string::npos);
}

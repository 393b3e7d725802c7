#include "experiment/experiment.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "experiment/yaml_section.h"
#include "integer_text.h"

namespace na {
namespace fs = std::filesystem;

namespace {

// A double as YAML in the shortest text that reads back as the same double (std::to_chars):
// "0.004", where yaml-cpp's own conversion writes 17 digits ("0.0040000000000000001").
// Non-finite values keep yaml-cpp's spelling (.inf, .nan), which its reader understands.
YAML::Node real(double v) {
  if (!std::isfinite(v)) return YAML::Node(v);
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return YAML::Node(std::string(buf, r.ptr));
}

std::string absolute_from(const std::string& dir, const std::string& path) {
  fs::path p(path);
  return (p.is_absolute() ? p : fs::path(dir) / p).lexically_normal().string();
}

// `text` null: read the file at `path`; otherwise parse `text`, named `path` in errors.
YAML::Node load_yaml_file(const std::string& path, const std::string* text) {
  NA_CHECK(text || fs::exists(path), path, "no such experiment file");
  try {
    return text ? YAML::Load(*text) : YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw Error(cat(path, ":", e.mark.line + 1, ":", e.mark.column + 1), cat("malformed YAML: ", e.msg));
  } catch (const YAML::Exception& e) {
    throw Error(path, cat("cannot read: ", e.what()));
  }
}

// yaml-cpp gives an anchor to its node before reading the node's content, so `&a {b: *a}` is a
// map that contains itself, and a few aliases can also make a short text a huge tree ("billion
// laughs"). Merging runs, --set, resolving and the model builder all walk the tree: such an
// experiment is refused here instead of overflowing the stack or running for hours.
void check_tree(const YAML::Node& n, const std::string& path, int64_t& budget, int depth = 0) {
  NA_CHECK(--budget >= 0 && depth <= 2500, yaml_at(path, n), "the experiment is nested deeper than 2500 or "
           "has more than 100000 values once its YAML aliases (*name) are expanded; is there an alias inside "
           "the map or list it refers to?");
  // yaml-cpp writes a trailing \r unquoted and reads it back as a line end: config.yaml and
  // checkpoints would not hold the settings the run used.
  NA_CHECK(!n.IsScalar() || n.Scalar().find('\r') == std::string::npos, yaml_at(path, n), "'", n.Scalar(),
           "' holds a carriage return (\\r), which config.yaml and checkpoints cannot keep: a script or file saved "
           "with Windows or old Mac line ends?");
  for (const auto& it : n) {  // nothing for a scalar
    if (n.IsMap()) {
      check_tree(it.first, path, budget, depth + 1);
      check_tree(it.second, path, budget, depth + 1);
    } else {
      check_tree(static_cast<const YAML::Node&>(it), path, budget, depth + 1);
    }
  }
}
void check_tree(const YAML::Node& n, const std::string& path) {
  int64_t budget = 100000;
  check_tree(n, path, budget);
}

CorpusSpec parse_data(YamlSection s, const std::string& dir) {
  CorpusSpec spec;
  spec.name_or_path = s.require<std::string>("corpus");
  if (!is_named_corpus(spec.name_or_path)) spec.name_or_path = absolute_from(dir, spec.name_or_path);
  spec.tokenizer = s.get_choice("tokenizer", "char", {"char", "word"});
  spec.val_fraction = s.get_real("val_fraction", spec.val_fraction, 0.0, 0.5);
  spec.test_fraction = s.get_real("test_fraction", spec.test_fraction, 0.0, 0.5);
  spec.max_vocab = static_cast<size_t>(s.get_int("max_vocab", 0, 0));
  spec.binary = s.get<bool>("binary", false);
  s.finish();
  return spec;
}

// train.distill: {teacher, alpha, temperature, top_k}; absent or null = no distillation. top_k <
// vocabulary is checked once the corpus is read (the teacher's constructor).
DistillConfig parse_distill(YamlSection s, const std::string& dir) {
  DistillConfig d;
  d.teacher = absolute_from(dir, s.require<std::string>("teacher"));
  d.alpha = s.get_real("alpha", d.alpha, 0.0, 1.0);
  d.temperature = s.get_real("temperature", d.temperature, 0.0, 1e6);
  NA_CHECK(d.temperature > 0, s.at("temperature"), "train.distill.temperature must be > 0, got ", d.temperature,
           " (1 = the teacher's own distribution; 2 is usual)");
  d.top_k = s.get_int("top_k", d.top_k, 0);
  s.finish();
  return d;
}

TrainConfig parse_train(YamlSection s, const std::string& dir) {
  TrainConfig t;
  t.steps = s.get_int("steps", t.steps, 1);
  t.batch_size = s.get_int("batch_size", t.batch_size, 1);
  t.seq_len = s.get_int("seq_len", t.seq_len, 1);
  t.micro_batches = s.get_int("micro_batches", t.micro_batches, 1);
  NA_CHECK(t.batch_size % t.micro_batches == 0, s.at("micro_batches"), "train.micro_batches ", t.micro_batches,
           " does not divide train.batch_size ", t.batch_size, ": each micro-batch has batch_size / micro_batches "
           "rows; choose a divisor of the batch size");
  t.optimizer = s.get_choice("optimizer", t.optimizer, {"adamw", "sgd"});
  t.lr = s.get_real("lr", t.lr, 0.0, 1e3);
  t.min_lr_ratio = s.get_real("min_lr_ratio", t.min_lr_ratio, 0.0, 1.0);
  t.warmup = s.get_int("warmup", t.warmup, 0);
  t.weight_decay = s.get_real("weight_decay", t.weight_decay, 0.0, 1e3);
  t.beta1 = s.get_real("beta1", t.beta1, 0.0, 0.999999);
  t.beta2 = s.get_real("beta2", t.beta2, 0.0, 0.999999999);
  t.eps = s.get_real("eps", t.eps, 0.0, 1.0);
  t.momentum = s.get_real("momentum", t.momentum, 0.0, 1.0);
  t.grad_clip = s.get_real("grad_clip", t.grad_clip, 0.0, 1e9);
  t.label_smoothing = s.get_real("label_smoothing", t.label_smoothing, 0.0, 0.999);
  t.checkpoint_every = s.get_int("checkpoint_every", t.checkpoint_every, 0);
  t.time_limit = s.get_real("time_limit", t.time_limit, 0.0, 1e9);
  t.patience = s.get_int("patience", t.patience, 0);
  t.windows = s.get_choice("windows", t.windows, {"random", "aligned"});
  const YAML::Node distill = s.node("distill");
  if (distill && !distill.IsNull()) {
    NA_CHECK(distill.IsMap(), s.at("distill"), "train.distill must be a map, e.g. {teacher: teacher.h5, alpha: 0.5, "
             "temperature: 2.0, top_k: 0}");
    t.distill = parse_distill(YamlSection(distill, "train.distill", s.where()), dir);
    NA_CHECK(t.windows == "aligned", s.at("distill"), "train.distill needs train.windows: aligned (each batch row one "
             "of the training split's windows of seq_len, so the teacher predicts the same contexts from a dump or "
             "live), but train.windows is ", t.windows, ": add `windows: aligned` under train (--set train.windows=aligned)");
    NA_CHECK(t.label_smoothing == 0, s.at("label_smoothing"), "train.label_smoothing ", t.label_smoothing,
             " cannot be combined with train.distill (the teacher already softens the targets): set it to 0");
  }
  NA_CHECK(t.warmup <= t.steps, s.at("warmup"), "train.warmup ", t.warmup, " is more than train.steps ", t.steps,
           ": lower warmup (e.g. --set train.warmup=", t.steps / 10, ")");
  s.finish();
  return t;
}

EvalConfig parse_eval(YamlSection s) {
  EvalConfig e;
  e.every = s.get_int("every", e.every, 0);
  e.batch_size = s.get_int("batch_size", e.batch_size, 1);
  e.seq_len = s.get_int("seq_len", e.seq_len, 0);
  e.test = s.get<bool>("test", e.test);
  e.dump = s.get<bool>("dump", e.dump);
  e.dump_dtype = s.get_choice("dump_dtype", e.dump_dtype, {"float32", "float16"});
  e.keep_best = s.get<bool>("keep_best", e.keep_best);
  s.finish();
  return e;
}

LogConfig parse_log(YamlSection s) {
  LogConfig l;
  l.every = s.get_int("every", l.every, 1);
  l.tensorboard = s.get<bool>("tensorboard", l.tensorboard);
  s.finish();
  return l;
}

std::vector<std::string> parse_paths(const YAML::Node& n, const std::string& where, const std::string& dir) {
  std::vector<std::string> out;
  if (!n || n.IsNull()) return out;
  NA_CHECK(n.IsSequence(), yaml_at(where, n), "plugin_paths must be a list of folders, e.g. [build/plugins]");
  for (const YAML::Node& p : n) {
    NA_CHECK(p.IsScalar(), yaml_at(where, p), "plugin_paths: each entry must be a folder path");
    out.push_back(absolute_from(dir, p.Scalar()));
  }
  return out;
}

// Sections a run may override, besides its name.
const char* const kRunSections[] = {"seed", "threads", "plugin_paths", "data", "model", "train", "eval", "log"};

}  // namespace

void deep_merge(YAML::Node base, const YAML::Node& over) {
  for (const auto& kv : over) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& cbase = base;
    YAML::Node old = cbase[key];
    if (old && old.IsMap() && kv.second.IsMap())
      deep_merge(old, kv.second);
    else
      base[key] = kv.second;
  }
}

namespace {
// A copy of n made of fresh nodes, which carry no source position (scalars as plain text).
YAML::Node without_positions(const YAML::Node& n) {
  if (n.IsScalar()) return YAML::Node(n.Scalar());
  if (n.IsSequence()) {
    YAML::Node out(YAML::NodeType::Sequence);
    for (const YAML::Node& item : n) out.push_back(without_positions(item));
    out.SetStyle(n.Style());  // an empty {} or [] stays as written, so the resolved text reads back the same
    return out;
  }
  if (n.IsMap()) {
    YAML::Node out(YAML::NodeType::Map);
    for (const auto& kv : n) out[kv.first.Scalar()] = without_positions(kv.second);
    out.SetStyle(n.Style());
    return out;
  }
  return n;  // null
}
}  // namespace

void apply_override(YAML::Node root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  NA_CHECK(eq != std::string::npos && eq > 0, "--set", "'", assignment,
           "' is not key.path=value (e.g. --set train.steps=100)");
  const std::string path = assignment.substr(0, eq);
  YAML::Node value;
  try {
    // No position anywhere in the value: "line 1" of the --set text would be read as the file's.
    value = without_positions(YAML::Load(assignment.substr(eq + 1)));
  } catch (const YAML::Exception& e) {
    throw Error("--set", cat("'", assignment, "': the value is not valid YAML: ", e.msg));
  }
  std::vector<std::string> keys;
  std::stringstream ss(path);
  for (std::string k; std::getline(ss, k, '.');) {
    NA_CHECK(!k.empty(), "--set", "'", path, "' has an empty key");
    keys.push_back(k);
  }
  YAML::Node node = root;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string& k = keys[i];
    const bool last = i + 1 == keys.size();
    if (node.IsSequence()) {
      uint64_t idx = 0;  // not stoul: it reads "1x" as 1 and "-1" as a huge index
      if (!parse_integer(k, idx).empty())
        throw Error("--set",
                    cat("'", path, "': '", k, "' indexes a list, so it must be a number (0 is the first item)"));
      NA_CHECK(idx < node.size(), "--set", "'", path, "': index ", idx, " is past the end of a list of ",
               node.size());
      if (last) {
        node[idx] = value;
        return;
      }
      node.reset(node[idx]);
      continue;
    }
    NA_CHECK(node.IsMap() || node.IsNull(), "--set", "'", path, "': '", keys[i - 1],
             "' is a value, not a map");
    if (last) {
      node[k] = value;
      return;
    }
    const YAML::Node& cnode = node;
    if (!cnode[k]) node[k] = YAML::Node(YAML::NodeType::Map);
    YAML::Node next = node[k];
    node.reset(next);
  }
}

RunConfig parse_run(const YAML::Node& node, const std::string& where, const std::string& dir) {
  YamlSection s(node, "run", where);
  RunConfig r;
  r.where = where;
  r.experiment = s.get<std::string>("experiment", "experiment");
  r.name = s.get<std::string>("run", "run");
  r.seed = s.get<uint64_t>("seed", 1);
  r.threads = s.get_int("threads", 0, 0, 1024);
  r.plugin_paths = parse_paths(s.node("plugin_paths"), where, dir);
  r.data = parse_data(YamlSection(s.node("data"), "data", where), dir);
  const YAML::Node model = s.node("model");  // checked first: assigning an absent key's node throws
  NA_CHECK(model && model.IsMap(), s.at("model"), "'model' is required: a map with d_model, max_len, blocks");
  r.model = model;
  r.train = parse_train(YamlSection(s.node("train"), "train", where), dir);
  r.eval = parse_eval(YamlSection(s.node("eval"), "eval", where));
  r.log = parse_log(YamlSection(s.node("log"), "log", where));
  NA_CHECK(r.train.patience == 0 || r.eval.every > 0, YamlSection(s.node("train"), "train", where).at("patience"),
           "train.patience counts evaluations, but eval.every is 0 (only a final one): set eval.every, e.g. ",
           std::max<int64_t>(1, r.train.steps / 10));
  r.compare_to = s.get<std::string>("compare_to", "");
  s.node("provenance");  // config.yaml's record of where the run trained: no setting
  s.finish();
  return r;
}

// `text` null: the file at `path`.
static Experiment load_experiment_from(const std::string& path, const std::vector<std::string>& overrides,
                                       const std::string* text) {
  const std::string dir = fs::absolute(path).parent_path().string();
  Experiment exp;
  exp.path = path;
  YAML::Node top = load_yaml_file(path, text);
  check_tree(top, path);
  NA_CHECK(top.IsMap(), path, "an experiment file is a map with data, model, train, eval and runs");
  {
    YamlSection s(top, "experiment", path);
    exp.name = s.get<std::string>("name", fs::path(path).stem().string());
    for (const char* k : kRunSections) s.node(k);
    YAML::Node runs = s.node("runs");
    s.finish();
    NA_CHECK(!runs || runs.IsNull() || runs.IsSequence(), yaml_at(path, runs),
             "'runs' must be a list, e.g. runs: [{name: softmax}, {name: linear, model: {...}}]");
  }
  const YAML::Node runs = top["runs"];
  const size_t n_runs = runs && runs.IsSequence() && runs.size() > 0 ? runs.size() : 1;
  for (size_t i = 0; i < n_runs; ++i) {
    // A fresh parse per run: yaml-cpp nodes are references, and merging must not leak
    // between runs. Positions (line:col) survive for errors.
    YAML::Node base = load_yaml_file(path, text);
    YAML::Node run(YAML::NodeType::Map);
    run["experiment"] = exp.name;
    run["run"] = "main";
    for (const char* k : kRunSections)
      if (base[k]) run[k] = base[k];
    if (n_runs > 1 || (runs && runs.IsSequence() && runs.size() == 1)) {
      YAML::Node over = base["runs"][i];
      NA_CHECK(over.IsMap() && over["name"], yaml_at(path, over), "runs: each run is a map with a 'name' and the "
               "sections it overrides, e.g. {name: linear, model: {attention: {plugin: linear}}}");
      for (const auto& kv : over) {
        const std::string key = kv.first.Scalar();
        if (key == "name") {
          run["run"] = kv.second;
        } else if (key == "compare_to") {
          run["compare_to"] = kv.second;
        } else {
          bool known = false;
          for (const char* k : kRunSections) known |= key == k;
          NA_CHECK(known, yaml_at(path, kv.first), "runs: unknown key '", key,
                   "'; a run has: name, compare_to, seed, threads, plugin_paths, data, model, train, eval, log");
          if (run[key] && run[key].IsMap() && kv.second.IsMap())
            deep_merge(run[key], kv.second);
          else
            run[key] = kv.second;
        }
      }
    }
    for (const std::string& o : overrides) apply_override(run, o);
    check_tree(run, path);
    exp.runs.push_back(parse_run(run, path, dir));
    for (size_t j = 0; j + 1 < exp.runs.size(); ++j)
      NA_CHECK(exp.runs[j].name != exp.runs.back().name, path, "two runs are named '", exp.runs.back().name,
               "'; run names must be unique (they name the output folders)");
  }
  // compare_to must name another run of this experiment (the order does not matter: the KL is
  // computed once every run is done).
  std::string names;
  for (const RunConfig& r : exp.runs) names += (names.empty() ? "" : ", ") + r.name;
  for (size_t i = 0; i < exp.runs.size(); ++i) {
    const RunConfig& r = exp.runs[i];
    if (r.compare_to.empty()) continue;
    const YAML::Node node = runs && runs.IsSequence() && i < runs.size() ? runs[i]["compare_to"] : YAML::Node();
    const std::string at = yaml_at(path, node);
    NA_CHECK(r.compare_to != r.name, at, "run '", r.name, "': compare_to names the run itself; name the reference ",
             "run to compare it with, one of: ", names);
    bool known = false;
    for (const RunConfig& other : exp.runs) known |= other.name == r.compare_to;
    NA_CHECK(known, at, "run '", r.name, "': compare_to: no run is named '", r.compare_to, "'; the runs are: ", names);
  }
  return exp;
}

Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  return load_experiment_from(path, overrides, nullptr);
}

Experiment load_experiment_text(const std::string& text, const std::string& path,
                                const std::vector<std::string>& overrides) {
  return load_experiment_from(path, overrides, &text);
}

YAML::Node RunConfig::resolved() const {
  YAML::Node n(YAML::NodeType::Map);
  n["experiment"] = experiment;
  n["run"] = name;
  n["seed"] = seed;
  n["threads"] = threads;
  n["plugin_paths"] = YAML::Node(YAML::NodeType::Sequence);
  for (const std::string& p : plugin_paths) n["plugin_paths"].push_back(p);
  YAML::Node d = n["data"];
  d["corpus"] = data.name_or_path;
  d["tokenizer"] = data.tokenizer;
  d["val_fraction"] = real(data.val_fraction);
  d["test_fraction"] = real(data.test_fraction);
  d["max_vocab"] = data.max_vocab;
  if (data.binary) d["binary"] = true;  // only when set: older runs' saved settings stay comparable
  n["model"] = YAML::Clone(model);
  YAML::Node t = n["train"];
  t["steps"] = train.steps;
  t["batch_size"] = train.batch_size;
  t["seq_len"] = train.seq_len;
  if (train.micro_batches != 1) t["micro_batches"] = train.micro_batches;  // only when set: older runs compare equal
  t["optimizer"] = train.optimizer;
  t["lr"] = real(train.lr);
  t["min_lr_ratio"] = real(train.min_lr_ratio);
  t["warmup"] = train.warmup;
  t["weight_decay"] = real(train.weight_decay);
  t["beta1"] = real(train.beta1);
  t["beta2"] = real(train.beta2);
  t["eps"] = real(train.eps);
  t["momentum"] = real(train.momentum);
  t["grad_clip"] = real(train.grad_clip);
  t["label_smoothing"] = real(train.label_smoothing);
  t["checkpoint_every"] = train.checkpoint_every;
  t["time_limit"] = real(train.time_limit);
  if (train.patience > 0) t["patience"] = train.patience;  // only when set, like windows below
  // Only when set, as data.binary: older runs' saved settings stay comparable on resume.
  if (train.windows != "random") t["windows"] = train.windows;
  if (train.distill.enabled()) {
    YAML::Node d = t["distill"];
    d["teacher"] = train.distill.teacher;
    d["alpha"] = real(train.distill.alpha);
    d["temperature"] = real(train.distill.temperature);
    d["top_k"] = train.distill.top_k;
  }
  YAML::Node e = n["eval"];
  e["every"] = eval.every;
  e["batch_size"] = eval.batch_size;
  e["seq_len"] = eval.seq_len;
  e["test"] = eval.test;
  e["dump"] = eval.dump;
  e["dump_dtype"] = eval.dump_dtype;
  if (eval.keep_best) e["keep_best"] = true;  // only when set: older runs' saved settings stay comparable
  YAML::Node l = n["log"];
  l["every"] = log.every;
  l["tensorboard"] = log.tensorboard;
  if (!compare_to.empty()) n["compare_to"] = compare_to;
  return n;
}

std::string RunConfig::resolved_text() const {
  YAML::Emitter out;
  out << resolved();
  return std::string(out.c_str()) + "\n";
}

}  // namespace na

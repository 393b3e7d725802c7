// `nanoattn match base.yaml --vary [NAME:]OVERRIDE ...`: each candidate re-balanced to the base
// run's parameter count (or training FLOPs, or inference state) by solving for one integer size;
// a table (or --json) of what each costs and the overrides that reproduce it. The solver is
// trainers/study/budget_match.h; this file parses, prints and sets the exit code.
#include <cmath>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "experiment/experiment.h"
#include "nanoattn/stop.h"
#include "param_report.h"
#include "plugin_loader.h"
#include "study/budget_match.h"
#include "study/cost_json.h"
#include "study/variant.h"

namespace na::cli {
namespace {

struct MatchArgs {
  std::string experiment, run, budget = "params", tolerance = "2%", solve = "d_ff";
  std::vector<std::string> varies, sets;
  int64_t context = 0;
  bool json = false;
};

// "2%" -> 0.02, "0.02" -> 0.02
double parse_tolerance(const std::string& text) {
  std::string t = text;
  const bool percent = !t.empty() && t.back() == '%';
  if (percent) t.pop_back();
  double x = 0;
  size_t used = 0;
  try {
    x = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  NA_CHECK(used == t.size() && used > 0 && std::isfinite(x) && x >= 0, "--tolerance",
           "'", text, "' is not a tolerance: give a percentage (2%) or a fraction (0.02), >= 0");
  return percent ? x / 100.0 : x;
}

// The solved key as an experiment path ("model.feed_forward.hidden") and as a model path.
std::string model_key(const std::string& solve) {
  const std::string prefix = "model.";
  return solve.rfind(prefix, 0) == 0 ? solve.substr(prefix.size()) : solve;
}

// 'it''s' quoting for a shell
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Row {
  std::string name, vary, value;  // value: the solved size ("-" for the base)
  std::vector<std::string> notes;
  std::vector<std::string> overrides;
  ModelCost cost;
  double ratio = 1;
  bool within = true;
};

// A map override (model.attention={plugin: ...}) replaces the base's n_heads too: say so.
std::vector<std::string> head_notes(const std::vector<int64_t>& base_heads, const Model& candidate) {
  std::vector<std::string> notes;
  const std::vector<AttentionUse> uses = candidate.anatomy().attention;
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < uses.size() && i < base_heads.size(); ++i)
    if (uses[i].n_heads != base_heads[i] && differ++ == 0) first = i;
  if (differ > 0)
    notes.push_back(cat(uses[first].path, differ > 1 ? cat(" (and ", differ - 1, " more attention layers)") : "",
                        " has ", uses[first].n_heads, " heads, the base's ", base_heads[first],
                        " (a map override replaces the whole map: give n_heads again)"));
  return notes;
}

std::string fixed(double x, const char* fmt) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

void print_table(const std::vector<Row>& rows, const std::string& key, const MatchSpec& spec) {
  std::vector<std::vector<std::string>> t = {{"candidate", key, "params", "ratio", "embeddings", "attention",
                                              "feature_map", "feed_forward", "norms", "head", "other",
                                              "train MFLOP/token", cat("state @ T=", spec.context), "", "override"}};
  for (const Row& r : rows) {
    const ParamBreakdown& p = r.cost.params;
    std::string set;
    for (const std::string& o : r.overrides) set += (set.empty() ? "" : " ") + std::string("--set ") + shell_quote(o);
    t.push_back({r.name, r.value, with_commas(p.total), fixed(r.ratio, "%.4f"), with_commas(p.embeddings),
                 with_commas(p.attention), with_commas(p.feature_map), with_commas(p.feed_forward),
                 with_commas(p.norms), with_commas(p.head), with_commas(p.other),
                 fixed(r.cost.train_flops_per_token / 1e6, "%.3f"), with_commas(r.cost.state_bytes),
                 state_label(r.cost.state_kind), set.empty() ? "(base)" : set});
  }
  std::vector<size_t> w(t[0].size(), 0);
  for (const auto& row : t)
    for (size_t c = 0; c < row.size(); ++c) w[c] = std::max(w[c], row[c].size());
  for (const auto& row : t) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const bool left = c == 0 || c >= row.size() - 2;  // names and text left, numbers right
      const std::string pad(w[c] - row[c].size(), ' ');
      line += (c ? "  " : "") + (left ? row[c] + (c + 1 < row.size() ? pad : "") : pad + row[c]);
    }
    std::printf("%s\n", line.c_str());
  }
  std::printf("\nbudget: %s, matched within %.4g%% by solving %s; train FLOPs at T = %lld; ratio = candidate / "
              "base\n", spec.budget.c_str(), 100.0 * spec.tolerance, key.c_str(), (long long)spec.seq_len);
  for (const Row& r : rows) {
    for (const std::string& a : r.cost.approximations) std::printf("note (%s): %s\n", r.name.c_str(), a.c_str());
    for (const std::string& a : r.notes) std::printf("note (%s): %s\n", r.name.c_str(), a.c_str());
  }
}

void run_match(const MatchArgs& a) {
  const Experiment base_exp = load_experiment(a.experiment, a.sets);
  const RunConfig* base = &base_exp.runs.at(0);
  if (!a.run.empty()) {
    base = nullptr;
    std::string names;
    for (const RunConfig& r : base_exp.runs) {
      if (r.name == a.run) base = &r;
      names += (names.empty() ? "" : ", ") + r.name;
    }
    NA_CHECK(base != nullptr, "--run", "no run named '", a.run, "' in ", a.experiment, "; its runs: ", names);
  }
  // The vocabulary comes from the corpus unless the model fixes it (as `nanoattn params`).
  int64_t vocab = 0;
  if (!base->model["vocab"] || base->model["vocab"].Scalar() == "auto")
    vocab = static_cast<int64_t>(load_corpus(base->data).tokenizer.size());
  const PluginRegistry plugins(base->plugin_paths);

  NA_CHECK(a.context >= 0, "--context", "must be > 0 (0 = train.seq_len), got ", a.context);
  MatchSpec spec;
  spec.budget = a.budget;
  spec.tolerance = parse_tolerance(a.tolerance);
  spec.solve = model_key(a.solve);
  spec.seq_len = base->train.seq_len;
  spec.context = a.context > 0 ? a.context : base->train.seq_len;
  spec.seed = base->seed;
  spec.where = base->where;
  budget_metric(ModelCost{}, spec.budget);  // an unknown budget fails before any work
  const std::string key = solve_key(spec.solve);

  std::vector<Row> rows;
  std::vector<int64_t> base_heads;
  {
    Model m(base->model, base->where, vocab, plugins, base->seed);
    for (const AttentionUse& u : m.anatomy().attention) base_heads.push_back(u.n_heads);
    Row r;
    r.name = base->name + " (base)";
    r.cost = model_cost(m, spec.seq_len, spec.context);
    r.value = "-";
    rows.push_back(r);
  }
  std::vector<std::string> failures;
  for (size_t i = 0; i < a.varies.size(); ++i) {
    const Variant v = parse_variant(a.varies[i], cat("v", i + 1));
    const std::string who = cat("candidate '", v.name, "' (--vary '", v.text, "')");
    MatchResult m;
    try {
      std::vector<std::string> sets = a.sets;
      sets.insert(sets.end(), v.assignments.begin(), v.assignments.end());
      const Experiment exp = load_experiment(a.experiment, sets);
      const RunConfig* cand = nullptr;
      for (const RunConfig& r : exp.runs)
        if (r.name == base->name) cand = &r;
      NA_CHECK(cand != nullptr, "match", "the override removed run '", base->name, "'");
      m = match_budget(base->model, cand->model, vocab, plugins, spec);
    } catch (const Stopped&) {
      throw;
    } catch (const Error& e) {
      throw Error(who, e.what());
    }
    Row r;
    r.name = v.name;
    r.vary = v.text;
    r.value = std::to_string(m.value);
    r.overrides = v.assignments;
    r.overrides.push_back(cat("model.", key, "=", m.value));
    r.cost = m.cost;
    r.notes = head_notes(base_heads, Model(m.model, base->where, vocab, plugins, base->seed));
    r.ratio = m.ratio;
    r.within = m.within_tolerance;
    rows.push_back(r);
    if (!m.within_tolerance)
      failures.push_back(cat(who, ": the closest ", key, " = ", m.value, " gives ", spec.budget, " ",
                             fixed(m.achieved, "%.0f"), ", ", fixed(100.0 * (m.ratio - 1.0), "%+.3f"),
                             "% from the base's ", fixed(m.target, "%.0f"), ", outside the tolerance ",
                             fixed(100.0 * spec.tolerance, "%.4g"), "%"));
  }

  if (a.json) {
    nlohmann::json j = {{"experiment", base_exp.name}, {"base_run", base->name}, {"budget", spec.budget},
                        {"tolerance", spec.tolerance}, {"solve", "model." + key}, {"seq_len", spec.seq_len},
                        {"context", spec.context}, {"base", cost_json(rows[0].cost)}};
    nlohmann::json c = nlohmann::json::array();
    for (size_t i = 1; i < rows.size(); ++i)
      c.push_back({{"name", rows[i].name}, {"vary", rows[i].vary}, {"value", std::stoll(rows[i].value)},
                   {"ratio", rows[i].ratio}, {"within_tolerance", rows[i].within}, {"overrides", rows[i].overrides},
                   {"cost", cost_json(rows[i].cost)}});
    j["candidates"] = c;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    print_table(rows, key, spec);
  }
  if (!failures.empty()) {
    std::string msg;
    for (const std::string& f : failures) msg += (msg.empty() ? "" : "\n") + f;
    throw Error("match", msg + "\n(widen --tolerance, or solve for a finer size with --solve)");
  }
}

}  // namespace

void add_match_command(CLI::App& app) {
  auto a = std::make_shared<MatchArgs>();
  auto* cmd = app.add_subcommand(
      "match", "Re-balance candidate models to a base run's parameter count (or FLOPs, or state) by solving for one "
               "size");
  cmd->footer(
      "Each --vary is one candidate: [NAME:]key.path=value[;key.path=value...], --set syntax, applied to the base "
      "run (the first run, or --run), e.g.\n"
      "  --vary 'dpfp3:model.attention={plugin: linear, n_heads: 4, options: {feature_map: dpfp, nu: 3}}'\n"
      "  --vary 'wide:model.attention.plugin=linear;model.attention.options={key_dim: 64}'\n"
      "As with --set, a map value replaces the whole map (give n_heads again; a note says when the heads "
      "differ from the base's): change one key with its path (model.attention.plugin=linear).\n"
      "For each, the integer --solve size whose budget is nearest the base's is found (d_ff = "
      "model.feed_forward.hidden, which the feed_forward blocks must not set themselves; d_model: only values the "
      "model builds with, e.g. divisible by n_heads; or any integer key path, e.g. model.blocks.2.repeat.n).\n"
      "Budgets: params (as `nanoattn params` counts), flops (training FLOPs per token at train.seq_len), state "
      "(inference bytes at --context for one sequence: an RNN's measured state, else the KV cache).\n"
      "The last column is the overrides that reproduce a row with run / params. Exits 1 if a candidate cannot get "
      "within --tolerance, naming it and the closest value.");
  cmd->add_option("experiment", a->experiment, "the base experiment YAML")->required();
  cmd->add_option("--vary", a->varies, "a candidate: [NAME:]key.path=value[;key.path=value...] (repeatable)")
      ->required();
  cmd->add_option("--budget", a->budget, "what to match: params | flops | state (default params)");
  cmd->add_option("--tolerance", a->tolerance, "allowed relative difference: 2% or 0.02 (default 2%)");
  cmd->add_option("--solve", a->solve, "the size to solve for: d_ff | d_model | model.KEY.PATH (default d_ff)");
  cmd->add_option("--context", a->context, "T of the inference state (default train.seq_len)");
  cmd->add_option("--run", a->run, "the base run (default: the first)");
  cmd->add_option("--set", a->sets, "override a setting of every model, e.g. --set model.d_model=256 (repeatable)");
  cmd->add_flag("--json", a->json, "print JSON instead of the table");
  cmd->callback([a] { run_match(*a); });
}

}  // namespace na::cli

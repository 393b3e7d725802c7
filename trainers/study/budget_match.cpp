#include "budget_match.h"

#include <cmath>
#include <map>

#include "experiment/experiment.h"
#include "integer_text.h"
#include "nanoattn/stop.h"
#include "plugin_loader.h"

namespace na {

namespace {

// The node at a dotted path (a number indexes a list); undefined if absent.
YAML::Node find_path(const YAML::Node& root, const std::string& path) {
  const YAML::Node missing(YAML::NodeType::Undefined);
  YAML::Node node = root;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string k = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const YAML::Node& here = node;  // const lookups: never insert a key into the caller's YAML
    // A missing key gives an invalid node, which assignment and reset() refuse: copy, then test.
    const YAML::Node item = [&] {
      uint64_t idx = 0;
      if (here.IsSequence()) return parse_integer(k, idx).empty() && idx < here.size() ? here[idx] : missing;
      return here.IsMap() ? here[k] : missing;
    }();
    if (!item) return missing;
    node.reset(item);
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

int64_t int_at(const YAML::Node& model, const std::string& path, int64_t fallback) {
  const YAML::Node v = find_path(model, path);
  int64_t x = fallback;
  if (v && v.IsScalar() && parse_integer(v.Scalar(), x).empty()) return x;
  return fallback;
}

// Builds the candidate at each tried value of the key, once.
class Solver {
 public:
  Solver(const YAML::Node& candidate, int64_t vocab, const PluginRegistry& plugins, const MatchSpec& spec,
         std::string key)
      : candidate_(candidate), vocab_(vocab), plugins_(plugins), spec_(spec), key_(std::move(key)) {}

  YAML::Node with_value(int64_t x) const {
    YAML::Node m = YAML::Clone(candidate_);
    apply_override(m, cat(key_, "=", x));  // outside the try below: a bad key path is the caller's error
    return m;
  }

  ModelCost cost_at(int64_t x) const {
    Model model(with_value(x), spec_.where, vocab_, plugins_, spec_.seed);
    return model_cost(model, spec_.seq_len, spec_.context);
  }

  // The metric at x, or false if no model builds there.
  bool valid(int64_t x) { return probe(x).ok; }
  double metric(int64_t x) { return probe(x).metric; }
  const std::string& first_error() const { return first_error_; }

  // The first value from x on in direction dir (+1 or -1) whose model builds, stopping before
  // `stop` and at 1; 0 if none within a few thousand steps.
  int64_t valid_from(int64_t x, int dir, int64_t stop) {
    for (int64_t y = x, steps = 0; y >= 1 && y <= spec_.max_value && y != stop && steps < 4096; y += dir, ++steps)
      if (valid(y)) return y;
    return 0;
  }

 private:
  struct Probe {
    bool ok = false;
    double metric = 0;
  };
  const Probe& probe(int64_t x) {
    auto it = probes_.find(x);
    if (it != probes_.end()) return it->second;
    YAML::Node m = with_value(x);
    Probe p;
    try {
      Model model(m, spec_.where, vocab_, plugins_, spec_.seed);
      p.metric = budget_metric(model_cost(model, spec_.seq_len, spec_.context), spec_.budget);
      p.ok = true;
    } catch (const Stopped&) {
      throw;
    } catch (const Error& e) {
      if (first_error_.empty()) first_error_ = cat("at ", key_, " = ", x, ": ", e.what());
    }
    return probes_[x] = p;
  }

  const YAML::Node& candidate_;
  int64_t vocab_;
  const PluginRegistry& plugins_;
  const MatchSpec& spec_;
  std::string key_;
  std::map<int64_t, Probe> probes_;
  std::string first_error_;
};

}  // namespace

std::string solve_key(const std::string& solve) {
  if (solve == "d_ff") return "feed_forward.hidden";
  NA_CHECK(!solve.empty(), "match", "the key to solve is empty: give d_ff, d_model or a key path such as "
           "blocks.2.repeat.n");
  return solve;
}

double budget_metric(const ModelCost& cost, const std::string& budget) {
  if (budget == "params") return static_cast<double>(cost.params.total);
  if (budget == "flops") return cost.train_flops_per_token;
  if (budget == "state") return static_cast<double>(cost.state_bytes);
  throw Error("match", cat("unknown budget '", budget, "'; valid budgets: params, flops, state"));
}

MatchResult match_budget(const YAML::Node& base_model, const YAML::Node& candidate_model, int64_t vocab,
                         const PluginRegistry& plugins, const MatchSpec& spec) {
  NA_CHECK(spec.tolerance >= 0 && std::isfinite(spec.tolerance), "match", "tolerance must be >= 0, got ",
           spec.tolerance);
  MatchResult r;
  r.key = solve_key(spec.solve);
  if (r.key == "feed_forward.hidden")
    NA_CHECK(!find_path(candidate_model, "feed_forward.mult"), spec.where,
             "solving d_ff sets model.feed_forward.hidden, but the model sets model.feed_forward.mult (the two "
             "are one width written two ways): replace mult: M by hidden: M x d_model");
  {
    Model base(base_model, spec.where, vocab, plugins, spec.seed);
    r.base = model_cost(base, spec.seq_len, spec.context);
  }
  r.target = budget_metric(r.base, spec.budget);
  NA_CHECK(r.target > 0, "match", "the base's ", spec.budget, " is 0: nothing to match");

  Solver s(candidate_model, vocab, plugins, spec, r.key);
  const int64_t d_model = int_at(candidate_model, "d_model", 1);
  const int64_t start = int_at(candidate_model, r.key, r.key == "feed_forward.hidden" ? 4 * d_model : 1);
  const int64_t x = s.valid_from(std::max<int64_t>(start, 1), +1, 0);
  NA_CHECK(x > 0, spec.where, "no value of ", r.key, " from ", start, " on builds the candidate model; ",
           s.first_error());
  // A key that does not move the metric cannot balance it (e.g. d_ff while every feed_forward
  // block sets its own mult, which wins over model.feed_forward).
  const int64_t y = s.valid_from(x <= spec.max_value / 2 ? 2 * x : x + 1, +1, 0);
  NA_CHECK(y == 0 || s.metric(y) != s.metric(x), spec.where, "changing ", r.key, " (", x, " -> ", y,
           ") does not change the candidate's ", spec.budget,
           r.key == "feed_forward.hidden"
               ? ": every feed_forward block sets its own mult or hidden, which wins over model.feed_forward; "
                 "remove them from the blocks and give model.feed_forward instead"
               : ": solve for a size the budget depends on");

  // Bracket the target: metric(lo) < target <= metric(hi) (0 = no such value).
  int64_t lo = 0, hi = 0;
  if (s.metric(x) < r.target) {
    lo = x;
    while (lo < spec.max_value) {
      const int64_t n = s.valid_from(std::min(2 * lo, spec.max_value), +1, 0);
      if (n == 0 || n == lo) break;
      if (s.metric(n) >= r.target) {
        hi = n;
        break;
      }
      lo = n;
    }
  } else {
    hi = x;
    while (hi > 1) {
      const int64_t n = s.valid_from(hi / 2, -1, 0);
      if (n == 0 || n == hi) break;
      if (s.metric(n) < r.target) {
        lo = n;
        break;
      }
      hi = n;
    }
  }
  // Bisect to two neighbouring valid values.
  while (lo > 0 && hi > 0 && hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    int64_t m = s.valid_from(mid, +1, hi);
    if (m == 0) m = s.valid_from(mid - 1, -1, lo);
    if (m == 0) break;
    (s.metric(m) < r.target ? lo : hi) = m;
  }
  if (lo == 0 || hi == 0) r.value = lo == 0 ? hi : lo;
  else r.value = std::abs(s.metric(hi) - r.target) < std::abs(s.metric(lo) - r.target) ? hi : lo;

  r.model = s.with_value(r.value);
  r.cost = s.cost_at(r.value);
  r.achieved = budget_metric(r.cost, spec.budget);
  r.ratio = r.achieved / r.target;
  r.within_tolerance = std::abs(r.ratio - 1.0) <= spec.tolerance;
  return r;
}

}  // namespace na

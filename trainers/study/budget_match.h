// Matched budgets: re-balance a candidate model to a base model's parameter count, training
// FLOPs or inference state by solving for one integer size (the feed-forward width d_ff,
// d_model, or any integer key of the model YAML). `nanoattn match` prints it; studies call it.
//
// The budget metric is taken as non-decreasing in the solved size (as params, FLOPs and state
// are in every width); the solver brackets the base's value by doubling and halving, then
// bisects to the two neighbouring valid values and keeps the nearer. Values whose model does
// not build (d_model that n_heads does not divide, ...) are skipped.
#pragma once
#include <cstdint>
#include <string>

#include <yaml-cpp/yaml.h>

#include "cost_model.h"

namespace na {

class PluginRegistry;

struct MatchSpec {
  std::string budget = "params";  // params | flops (training FLOPs per token) | state (bytes at context)
  double tolerance = 0.02;        // |candidate / base - 1| allowed
  // d_ff (= feed_forward.hidden: the model.feed_forward default), d_model, or a key path in the
  // model YAML ("blocks.2.repeat.n"; a number indexes a list).
  std::string solve = "d_ff";
  int64_t seq_len = 256;          // T of the training FLOPs
  int64_t context = 256;          // T of the KV cache
  uint64_t seed = 1;              // parameters are drawn but not used: any seed gives the same counts
  std::string where = "model";    // names the source in errors ("exp.yaml")
  int64_t max_value = int64_t{1} << 30;  // the largest size tried
};

struct MatchResult {
  std::string key;        // the model key path solved, e.g. "feed_forward.hidden"
  int64_t value = 0;      // its solved value
  YAML::Node model;       // the candidate model with key = value (its own copy)
  ModelCost cost, base;   // of that model and of the base
  double target = 0, achieved = 0;  // the budget metric of the base and of the candidate
  double ratio = 0;       // achieved / target
  bool within_tolerance = false;
};

// The model key path that `solve` names ("d_ff" -> "feed_forward.hidden").
std::string solve_key(const std::string& solve);
// The metric of `budget` in `cost`; throws naming the valid budgets.
double budget_metric(const ModelCost& cost, const std::string& budget);

// Throws (naming the key and the fix) when no value of the key builds, or when the key does not
// change the metric (e.g. d_ff while every feed_forward block sets its own mult).
MatchResult match_budget(const YAML::Node& base_model, const YAML::Node& candidate_model, int64_t vocab,
                         const PluginRegistry& plugins, const MatchSpec& spec);

}  // namespace na

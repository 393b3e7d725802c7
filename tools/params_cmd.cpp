// `nanoattn params experiment.yaml`: each run's parameter count by block group, and
// `nanoattn blocks`: the blocks a model can be built from.
#include <cstdio>
#include <memory>

#include "block.h"
#include "commands.h"
#include "experiment/experiment.h"
#include "model.h"
#include "param_report.h"
#include "plugin_loader.h"

namespace na::cli {
namespace {

struct ParamsArgs {
  std::string experiment;
  std::vector<std::string> sets;
  bool per_tensor = false;
};

void run_params(const ParamsArgs& a) {
  Experiment exp = load_experiment(a.experiment, a.sets);
  for (const RunConfig& r : exp.runs) {
    // The vocabulary comes from the corpus unless the model fixes it.
    int64_t vocab = 0;
    if (!r.model["vocab"] || r.model["vocab"].Scalar() == "auto")
      vocab = static_cast<int64_t>(load_corpus(r.data).tokenizer.size());
    PluginRegistry plugins(r.plugin_paths);
    Model model(r.model, r.where, vocab, plugins, r.seed);
    std::printf("run %s (vocab %lld, d_model %lld)\n%s\n", r.name.c_str(),
                static_cast<long long>(model.dims().vocab), static_cast<long long>(model.dims().d_model),
                format_param_table(model.params(), a.per_tensor).c_str());
  }
}

}  // namespace

void add_params_command(CLI::App& app) {
  auto a = std::make_shared<ParamsArgs>();
  auto* cmd = app.add_subcommand("params", "Parameter count of each run's model, by block group");
  cmd->add_option("experiment", a->experiment, "experiment YAML file")->required();
  cmd->add_option("--set", a->sets, "override a setting, e.g. --set model.d_model=256 (repeatable)");
  cmd->add_flag("--per-tensor", a->per_tensor, "also list every parameter with its shape");
  cmd->callback([a] { run_params(*a); });

  auto* blocks = app.add_subcommand("blocks", "List the blocks a model YAML can use, with their options");
  blocks->callback([] {
    for (const auto& [name, doc] : BlockRegistry::instance().list()) std::printf("%-16s %s\n", name.c_str(), doc.c_str());
  });
}

}  // namespace na::cli

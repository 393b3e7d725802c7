#include "train/saved_run.h"

#include <algorithm>
#include <filesystem>

#include "train/trainer.h"

namespace na {

void load_parameters(ParamStore& store, const Checkpoint& ck, const std::string& path) {
  std::vector<Parameter*> params = store.all();
  NA_CHECK(ck.params.size() == params.size(), path, "holds ", ck.params.size(), " parameters, the model has ",
           params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, value] = ck.params[i];
    NA_CHECK(name == params[i]->name() && value.shape() == params[i]->value().shape(), path, "parameter ", i,
             " is '", name, "' ", value.shape(), ", the model expects '", params[i]->name(), "' ",
             params[i]->value().shape());
    std::copy(value.data(), value.data() + value.numel(), params[i]->value().data());
  }
}

SavedRun load_saved_run(const std::string& checkpoint_path, bool allow_plugin_change) {
  Checkpoint ck = load_checkpoint(checkpoint_path);
  SavedRun run;
  run.path = checkpoint_path;
  const std::string where = checkpoint_path + ":config";
  YAML::Node config;
  try {
    config = YAML::Load(ck.config_yaml);
  } catch (const YAML::Exception& e) {
    throw Error(where, cat("the saved config is not valid YAML: ", e.msg));
  }
  run.cfg = parse_run(config, where, std::filesystem::absolute(checkpoint_path).parent_path().string());
  run.step = ck.step;
  run.tokenizer = Tokenizer::deserialize(ck.tokenizer);
  run.plugins = std::make_unique<PluginRegistry>(run.cfg.plugin_paths);
  run.plugin_changes = plugin_changes(ck.plugins, *run.plugins, attention_plugins(run.cfg));
  check_plugin_changes(run.plugin_changes, checkpoint_path, allow_plugin_change, stderr);
  run.model = std::make_unique<Model>(run.cfg.model, where, static_cast<int64_t>(run.tokenizer.size()),
                                      *run.plugins, run.cfg.seed);
  load_parameters(run.model->params(), ck, checkpoint_path);
  return run;
}

}  // namespace na

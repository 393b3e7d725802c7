// A trained model back from its checkpoint, for `nanoattn eval` and `nanoattn sample`: the
// settings, tokenizer and plugins it was trained with, and its parameters.
#pragma once
#include <memory>
#include <string>

#include "checkpoint/checkpoint.h"
#include "data/tokenizer.h"
#include "experiment/experiment.h"
#include "model.h"
#include "plugin_loader.h"
#include "train/plugin_check.h"

namespace na {

struct SavedRun {
  std::string path;
  RunConfig cfg;
  int64_t step = 0;
  Tokenizer tokenizer;
  std::unique_ptr<PluginRegistry> plugins;
  std::unique_ptr<Model> model;
  std::vector<PluginChange> plugin_changes;  // the model's plugins whose .so differs from the checkpoint's
};

// Throws na::Error naming the file for anything unusable (see load_checkpoint), when the saved
// parameters do not fit the model the saved config builds, and when a plugin of the model is not
// the build it was trained with (unless allow_plugin_change: then a warning on stderr, and the
// changes are in plugin_changes).
SavedRun load_saved_run(const std::string& checkpoint_path, bool allow_plugin_change = false);

// Copies a checkpoint's parameters into the model's, checking names and shapes in order.
void load_parameters(ParamStore& store, const Checkpoint& ck, const std::string& path);

}  // namespace na

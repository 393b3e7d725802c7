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

namespace na {

struct SavedRun {
  std::string path;
  RunConfig cfg;
  int64_t step = 0;
  Tokenizer tokenizer;
  std::unique_ptr<PluginRegistry> plugins;
  std::unique_ptr<Model> model;
};

// Throws na::Error naming the file for anything unusable (see load_checkpoint), and when the
// saved parameters do not fit the model the saved config builds.
SavedRun load_saved_run(const std::string& checkpoint_path);

// Copies a checkpoint's parameters into the model's, checking names and shapes in order.
void load_parameters(ParamStore& store, const Checkpoint& ck, const std::string& path);

}  // namespace na

#include "checkpoint/checkpoint.h"

#include <filesystem>

#include "io/h5.h"
#include "nanoattn/error.h"
#include "nanoattn/version.h"
#include "util/files.h"

namespace na {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "nanoattn-checkpoint";
constexpr const char* kIncomplete =
    "the checkpoint is incomplete or damaged: resume from another checkpoint of the run (or retrain)";

// A parameter or slot name becomes one HDF5 link name: HDF5 would read '/' as a path and '.'
// as the group itself.
void check_name(const std::string& file, const std::string& what, const std::string& name) {
  NA_CHECK(!name.empty() && name != "." && name.find('/') == std::string::npos, file, what, " '", name,
           "' cannot be an HDF5 dataset name: it must be non-empty, not '.', and contain no '/'");
}

// "<param>/<slot>" -> {param, slot}.
std::pair<std::string, std::string> split_optim_key(const std::string& file, const std::string& key) {
  const size_t slash = key.rfind('/');
  NA_CHECK(slash != std::string::npos, file, "optimizer buffer '", key, "' is not named '<param>/<slot>'");
  std::pair<std::string, std::string> out{key.substr(0, slash), key.substr(slash + 1)};
  check_name(file, "optimizer buffer's parameter", out.first);
  check_name(file, "optimizer slot", out.second);
  return out;
}

void write_contents(h5::File& f, const Checkpoint& ck) {
  f.set_attr_string("/", "format", kFormat);
  f.set_attr_int64("/", "format_version", Checkpoint::kFormatVersion);
  f.set_attr_string("/", "nanoattn_version", ck.nanoattn_version.empty() ? NANOATTN_VERSION : ck.nanoattn_version);
  f.set_attr_string("/", "run_name", ck.run_name);
  f.set_attr_string("/", "config", ck.config_yaml);
  f.set_attr_int64("/", "step", ck.step);
  f.set_attr_uint64("/", "seed", ck.seed);
  f.set_attr_uint64("/", "data_cursor", ck.data_cursor);
  f.set_attr_string("/", "tokenizer", ck.tokenizer);
  f.set_attr_string("/", "optimizer", ck.optimizer);
  f.set_attr_int64("/", "optimizer_steps", ck.optimizer_steps);
  f.set_attr_double("/", "best_val_bpc", ck.best_val_bpc);
  f.set_attr_int64("/", "best_step", ck.best_step);
  f.set_attr_double("/", "elapsed_s", ck.elapsed_s);

  f.create_group("/plugins");
  for (const auto& [name, sha] : ck.plugins) {
    NA_CHECK(!f.has_attr("/plugins", name), f.path(), "plugin '", name, "' is listed twice");
    f.set_attr_string("/plugins", name, sha);
  }
  f.create_group("/params");
  for (const auto& [name, value] : ck.params) {
    check_name(f.path(), "parameter name", name);
    f.write("/params/" + name, value);  // an existing name fails here: names are unique
  }
  f.create_group("/optim");
  for (const auto& [key, value] : ck.optim) {
    const auto [param, slot] = split_optim_key(f.path(), key);
    f.write("/optim/" + param + "/" + slot, value);
  }
}

// The bytes of the tensors: what a checkpoint needs on disk, give or take its metadata.
uint64_t tensor_bytes(const Checkpoint& ck) {
  uint64_t n = 0;
  for (const auto& [name, t] : ck.params) n += static_cast<uint64_t>(t.numel()) * sizeof(float);
  for (const auto& [name, t] : ck.optim) n += static_cast<uint64_t>(t.numel()) * sizeof(float);
  return n;
}

std::string written_by(const h5::File& f) {
  try {
    return "nanoattn " + f.attr_string("/", "nanoattn_version");
  } catch (const Error&) {
    return "an unknown nanoattn version";
  }
}

void need_attr(const h5::File& f, const std::string& name) {
  NA_CHECK(f.has_attr("/", name), f.path(), "attribute '", name, "' of / is missing: ", kIncomplete);
}

void need_group(const h5::File& f, const std::string& group) {
  NA_CHECK(f.has_group(group), f.path(), "group ", group, " is missing: ", kIncomplete);
}

Checkpoint read_header(const h5::File& f) {
  const std::string& p = f.path();
  NA_CHECK(f.has_attr("/", "format"), p,
           "an HDF5 file, but not a nanoattn checkpoint (it has no 'format' attribute on /): pass a checkpoint "
           "written by nanoattn");
  const std::string format = f.attr_string("/", "format");
  NA_CHECK(format == kFormat, p, "an HDF5 file, but not a nanoattn checkpoint: its 'format' attribute is '",
           format, "', expected '", kFormat, "'");
  need_attr(f, "format_version");
  Checkpoint ck;
  ck.format_version = f.attr_int64("/", "format_version");
  if (ck.format_version != Checkpoint::kFormatVersion) {
    const std::string fix =
        ck.format_version > Checkpoint::kFormatVersion
            ? cat("load it with a newer nanoattn that reads version ", ck.format_version, " (", written_by(f),
                  " wrote it; this is nanoattn ", NANOATTN_VERSION, ")")
            : cat("load it with ", written_by(f), ", which wrote it (this is nanoattn ", NANOATTN_VERSION, ")");
    throw Error(p, cat("written by format version ", ck.format_version, ", this nanoattn reads version ",
                       Checkpoint::kFormatVersion, ": ", fix));
  }
  for (const char* name : {"nanoattn_version", "run_name", "config", "step", "seed", "data_cursor", "tokenizer",
                           "optimizer", "optimizer_steps", "best_val_bpc", "elapsed_s"})
    need_attr(f, name);
  ck.nanoattn_version = f.attr_string("/", "nanoattn_version");
  ck.run_name = f.attr_string("/", "run_name");
  ck.config_yaml = f.attr_string("/", "config");
  ck.step = f.attr_int64("/", "step");
  ck.seed = f.attr_uint64("/", "seed");
  ck.data_cursor = f.attr_uint64("/", "data_cursor");
  ck.tokenizer = f.attr_string("/", "tokenizer");
  ck.optimizer = f.attr_string("/", "optimizer");
  ck.optimizer_steps = f.attr_int64("/", "optimizer_steps");
  ck.best_val_bpc = f.attr_double("/", "best_val_bpc");
  if (f.has_attr("/", "best_step")) ck.best_step = f.attr_int64("/", "best_step");  // optional: older files lack it
  ck.elapsed_s = f.attr_double("/", "elapsed_s");
  need_group(f, "/plugins");
  for (const std::string& name : f.attr_names("/plugins"))
    ck.plugins.emplace_back(name, f.attr_string("/plugins", name));
  return ck;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  // The same temp naming and commit as every file nanoattn replaces ("<dir>/.<name>.tmp-<pid>"),
  // so a run folder's cleanup finds the leftovers of a killed save.
  const std::string tmp = temp_path_for(path);
  try {
    h5::File f = h5::File::create(tmp);
    try {
      write_contents(f, ck);
      f.flush();
      f.close();
    } catch (...) {
      f.discard();  // it is deleted below: closing it must not write to the failing disk again
      throw;
    }
  } catch (const Error& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error(path, cat("checkpoint not saved (any previous file there is untouched): ", e.what(),
                          space_hint(e.what(), path, tensor_bytes(ck))));
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  commit_file(tmp, path);  // fsync, rename over `path`, fsync the folder; removes tmp on failure
}

Checkpoint read_checkpoint_header(const std::string& path) {
  h5::File f = h5::File::open(path);
  return read_header(f);
}

Checkpoint load_checkpoint(const std::string& path) {
  h5::File f = h5::File::open(path);
  Checkpoint ck = read_header(f);
  need_group(f, "/params");
  for (const std::string& name : f.datasets("/params")) {
    NA_CHECK(name.find('/') == std::string::npos, path, "dataset /params/", name,
             ": parameters must sit directly in /params (names are flat, dotted): ", kIncomplete);
    ck.params.emplace_back(name, f.read("/params/" + name));
  }
  need_group(f, "/optim");
  for (const std::string& key : f.datasets("/optim")) {
    const auto [param, slot] = split_optim_key(path, key);
    NA_CHECK(f.has_dataset("/params/" + param), path, "dataset /params/", param, " is missing, though /optim/",
             param, " holds optimizer state for it: ", kIncomplete);
    ck.optim.emplace_back(key, f.read("/optim/" + key));
  }
  return ck;
}

}  // namespace na

#include "block.h"

#include "model.h"
#include "nanoattn/profile.h"
#include "recompute.h"
#include "nanoattn/stop.h"

namespace na {

BlockContext::BlockContext(const std::string& type, const YAML::Node& node, const std::string& path,
                           const std::string& where, const ModelDims& dims, ParamStore& store,
                           const PluginRegistry& plugins)
    : type_(type), node_(node), path_(path), where_(where), dims_(dims), store_(store), plugins_(plugins) {
  NA_CHECK(!node || node.IsNull() || node.IsMap(), at(), "block '", type, "' takes a map of options, e.g. {", type,
           ": {name: x}}");
  store_.enter_block(type_);  // last: a throwing constructor runs no destructor
}

BlockContext::~BlockContext() { store_.leave_block(); }

YAML::Node BlockContext::node_option(const std::string& key) {
  asked_.insert(key);
  return node_ && node_.IsMap() ? node_[key] : YAML::Node();
}

void BlockContext::finish() const {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    std::string key = kv.first.as<std::string>();
    if (asked_.count(key) || generic_.count(key)) continue;
    std::string valid;
    for (const std::string& k : asked_) valid += (valid.empty() ? "" : ", ") + k;
    throw Error(at(kv.first), cat("block '", type_, "' has no option '", key, "'; valid options: ", valid));
  }
}

std::string BlockContext::path_for(const std::string& default_name) {
  std::string name = option<std::string>("name", default_name);
  if (name.empty()) return path_;
  return path_.empty() ? name : path_ + "." + name;
}

std::string BlockContext::at() const { return at(node_); }

std::string BlockContext::at(const YAML::Node& n) const {
  if (!n || n.Mark().line < 0) return where_;
  return cat(where_, ":", n.Mark().line + 1, ":", n.Mark().column + 1);
}

BlockRegistry& BlockRegistry::instance() {
  static BlockRegistry r;
  return r;
}

void BlockRegistry::add(const std::string& name, const std::string& doc, BlockFactory factory) {
  NA_CHECK(blocks_.count(name) == 0, "BlockRegistry", "block '", name, "' is registered twice");
  blocks_[name] = {doc, std::move(factory)};
}

std::string BlockRegistry::unknown(const std::string& name) const {
  if (blocks_.count(name)) return "";
  std::string known;
  for (const auto& [n, _] : blocks_) known += (known.empty() ? "" : ", ") + n;
  return cat("unknown block '", name, "'; known blocks: ", known);
}

std::unique_ptr<Block> BlockRegistry::create(const std::string& name, BlockContext& ctx) const {
  check_stop("building the model");
  auto it = blocks_.find(name);
  NA_CHECK(it != blocks_.end(), ctx.at(), unknown(name));
  std::unique_ptr<Block> b;
  try {
    b = it->second.second(ctx);
  } catch (const Stopped&) {
    throw;
  } catch (const Error& e) {
    // Errors from below the model (the plugin loader, the parameter store) do not know the
    // YAML file: say which block they came from. Errors that name the file pass unchanged.
    if (ctx.where().empty() || e.context().rfind(ctx.where(), 0) == 0) throw;
    throw Error(ctx.at(), cat("block '", name, "': ", e.what()));
  }
  ctx.finish();
  return b;
}

std::vector<std::pair<std::string, std::string>> BlockRegistry::list() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [n, v] : blocks_) out.push_back({n, v.first});
  return out;
}

std::vector<std::unique_ptr<Block>> build_blocks(const YAML::Node& list, const std::string& path,
                                                 const std::string& where, const ModelDims& dims,
                                                 ParamStore& store, const PluginRegistry& plugins) {
  auto mark = [&](const YAML::Node& n) {
    // A missing node has no mark (asking throws yaml-cpp's "invalid node").
    return !n || n.Mark().line < 0 ? where : cat(where, ":", n.Mark().line + 1, ":", n.Mark().column + 1);
  };
  NA_CHECK(list && list.IsSequence(), mark(list), "'blocks' must be a list of {block_type: {options}} items");
  std::vector<std::unique_ptr<Block>> blocks;
  for (const YAML::Node& item : list) {
    NA_CHECK(item.IsMap() && item.size() == 1, mark(item),
             "each block is a one-key map {block_type: {options}}, e.g. - layernorm: {name: ln_f}");
    auto kv = *item.begin();
    std::string unknown = BlockRegistry::instance().unknown(kv.first.as<std::string>());
    NA_CHECK(unknown.empty(), mark(kv.first), unknown);
    BlockContext ctx(kv.first.as<std::string>(), kv.second, path, where, dims, store, plugins);
    const bool recompute = ctx.generic_option<bool>("recompute", false);
    std::unique_ptr<Block> b = BlockRegistry::instance().create(ctx.type(), ctx);
    b->type = ctx.type();
    // The same block and parameters, its activations recomputed in the backward (recompute.h).
    if (recompute) b = make_recompute(std::move(b), ctx.at());
    blocks.push_back(std::move(b));
  }
  return blocks;
}

uint64_t stable_hash(const std::string& name) {
  uint64_t h = 0x6e616e6f61747474ull;
  for (char c : name) h = Rng::mix(h, static_cast<unsigned char>(c));
  return h;
}

void describe_blocks(const std::vector<std::unique_ptr<Block>>& blocks, ModelAnatomy& a) {
  for (const auto& b : blocks) b->describe(a);
}

Var run_blocks(const std::vector<std::unique_ptr<Block>>& blocks, Var x, const BlockInput& in) {
  for (const auto& b : blocks) {
    profile::Scope scope(profile::Scope::Block, b->type.c_str());
    x = b->forward(x, in);
  }
  return x;
}

}  // namespace na

#include "study/study_config.h"

#include <filesystem>
#include <set>

#include "data/corpus.h"
#include "experiment/experiment.h"
#include "experiment/yaml_section.h"
#include "nanoattn/error.h"

namespace na {
namespace fs = std::filesystem;

namespace {

// Names become folder names: keep them plain.
void check_name(const std::string& name, const std::string& at, const std::string& what) {
  bool ok = !name.empty() && name.size() <= 64 && name != "tune";
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.');
  NA_CHECK(ok && name[0] != '.', at, what, " '", name, "' must be 1-64 letters, digits, '_' or '.' (not starting "
           "with '.', not 'tune'): it names a folder");
}

std::vector<uint64_t> parse_seeds(const YAML::Node& n, const std::string& where) {
  NA_CHECK(n && n.IsSequence() && n.size() > 0, yaml_at(where, n), "seeds must be a non-empty list, e.g. [1, 2, 3]");
  std::vector<uint64_t> seeds;
  for (const YAML::Node& s : n) {
    YAML::Node wrap(YAML::NodeType::Map);
    wrap["seed"] = s;
    seeds.push_back(YamlSection(wrap, "seeds", where).get<uint64_t>("seed", 0));
    for (size_t i = 0; i + 1 < seeds.size(); ++i)
      NA_CHECK(seeds[i] != seeds.back(), yaml_at(where, s), "seeds: ", seeds.back(), " is listed twice");
  }
  return seeds;
}

std::vector<std::pair<std::string, std::vector<YAML::Node>>> parse_tune(const YAML::Node& n, const std::string& where) {
  std::vector<std::pair<std::string, std::vector<YAML::Node>>> grid;
  if (!n || n.IsNull()) return grid;
  NA_CHECK(n.IsMap(), yaml_at(where, n), "tune must be a map of key paths to lists of values, e.g. "
           "{train.lr: [1e-3, 2e-3], model.dropout.p: [0, 0.1]}");
  for (const auto& kv : n) {
    NA_CHECK(kv.second.IsSequence() && kv.second.size() > 0, yaml_at(where, kv.second), "tune: ", kv.first.Scalar(),
             " must be a non-empty list of values");
    std::vector<YAML::Node> values;
    for (const YAML::Node& v : kv.second) {
      NA_CHECK(v.IsScalar(), yaml_at(where, v), "tune: ", kv.first.Scalar(), ": each value must be a scalar");
      values.push_back(v);
    }
    grid.emplace_back(kv.first.Scalar(), values);
  }
  return grid;
}

std::vector<StudyVariant> parse_variants(const YAML::Node& n, const std::string& where) {
  NA_CHECK(n && n.IsSequence() && n.size() > 0, yaml_at(where, n), "variants must be a non-empty list, e.g. "
           "[{name: elu, model: {attention: {plugin: linear}}}]");
  std::vector<StudyVariant> out;
  for (const YAML::Node& v : n) {
    YamlSection s(v, "variants", where);
    StudyVariant var;
    var.name = s.require<std::string>("name");
    check_name(var.name, s.at("name"), "variant name");
    NA_CHECK(var.name != "softmax", s.at("name"), "variant name 'softmax' is the baseline's: choose another");
    var.model = s.node("model");
    NA_CHECK(var.model && var.model.IsMap(), s.at("model"), "variant '", var.name, "': 'model' is required: the "
             "overrides of the baseline's model, e.g. {attention: {plugin: linear}}");
    var.distill = s.get<bool>("distill", true);
    s.finish();
    for (const StudyVariant& other : out)
      NA_CHECK(other.name != var.name, s.at("name"), "two variants are named '", var.name, "'");
    out.push_back(var);
  }
  return out;
}

// An assignment for apply_override: "key.path=<value as flow YAML>".
std::string assignment(const std::string& key, const YAML::Node& value) {
  YAML::Emitter e;
  e << YAML::Flow << value;
  return key + "=" + e.c_str();
}

void apply_quick(StudyConfig& st, const YAML::Node& q, const std::string& where) {
  YamlSection s(q, "quick", where);
  if (YAML::Node seeds = s.node("seeds")) st.seeds = parse_seeds(seeds, where);
  if (YAML::Node set = s.node("set")) {
    NA_CHECK(set.IsMap(), yaml_at(where, set), "quick.set must be a map of key paths to values, e.g. {train.steps: 100}");
    for (const auto& kv : set) apply_override(st.experiment, assignment(kv.first.Scalar(), kv.second));
  }
  if (YAML::Node tune = s.node("tune")) st.tune = parse_tune(tune, where);
  if (YAML::Node keep = s.node("variants")) {
    NA_CHECK(keep.IsSequence(), yaml_at(where, keep), "quick.variants must be a list of variant names");
    std::vector<StudyVariant> kept;
    for (const YAML::Node& k : keep) {
      bool found = false;
      for (const StudyVariant& v : st.variants)
        if (v.name == k.Scalar()) kept.push_back(v), found = true;
      NA_CHECK(found, yaml_at(where, k), "quick.variants: no variant is named '", k.Scalar(), "'");
    }
    st.variants = kept;
  }
  s.finish();
}

}  // namespace

std::vector<TunePoint> StudyConfig::tune_points() const {
  std::vector<TunePoint> points(1);
  for (const auto& [key, values] : tune) {
    const std::string short_key = key.substr(key.rfind('.') + 1);
    std::vector<TunePoint> next;
    for (const TunePoint& p : points)
      for (const YAML::Node& v : values) {
        TunePoint q = p;
        q.name += (q.name.empty() ? "" : "-") + short_key + v.Scalar();
        q.settings.emplace_back(key, v);
        next.push_back(q);
      }
    points = next;
  }
  if (points.size() == 1 && points[0].name.empty()) points[0].name = "default";
  return points;
}

StudyConfig load_study(const std::string& path, bool quick, const std::string& corpus,
                       const std::vector<std::string>& sets) {
  NA_CHECK(fs::exists(path), path, "no such study file");
  YAML::Node top;
  try {
    top = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw Error(path, cat("is not valid YAML: ", e.what()));
  }
  NA_CHECK(top.IsMap(), path, "a study file is a map with name, seeds, corpora, experiment, variants, ...");
  StudyConfig st;
  st.path = path;
  st.dir = fs::absolute(path).parent_path().string();
  st.quick = quick;
  YamlSection s(top, "study", path);
  st.name = s.get<std::string>("name", fs::path(path).stem().string());
  check_name(st.name, s.at("name"), "study name");
  st.seeds = parse_seeds(s.node("seeds"), path);
  st.jobs = s.get_int("jobs", st.jobs, 1, 64);
  st.experiment = s.node("experiment");
  NA_CHECK(st.experiment && st.experiment.IsMap(), s.at("experiment"), "'experiment' is required: the baseline's "
           "model, train, eval and log sections, as in an experiment file");
  for (const auto& kv : st.experiment) {
    const std::string k = kv.first.Scalar();
    NA_CHECK(k == "model" || k == "train" || k == "eval" || k == "log" || k == "plugin_paths",
             yaml_at(path, kv.first), "experiment: unknown key '", k, "'; a study's experiment has model, train, "
             "eval, log, plugin_paths (the corpora, seeds and threads come from the study)");
  }
  if (YAML::Node pp = st.experiment["plugin_paths"])  // relative to the study file, like an experiment's
    for (YAML::Node p : pp)
      if (p.IsScalar() && fs::path(p.Scalar()).is_relative()) p = (fs::path(st.dir) / p.Scalar()).string();
  YAML::Node corpora = s.node("corpora");
  NA_CHECK(corpora && corpora.IsSequence() && corpora.size() > 0, s.at("corpora"), "corpora must be a non-empty "
           "list, e.g. [{name: tinyshakespeare, data: {corpus: tinyshakespeare}}]");
  for (const YAML::Node& c : corpora) {
    YamlSection cs(c, "corpora", path);
    StudyCorpus sc;
    sc.name = cs.require<std::string>("name");
    check_name(sc.name, cs.at("name"), "corpus name");
    sc.data = cs.node("data");
    NA_CHECK(sc.data && sc.data.IsMap() && sc.data["corpus"], cs.at("data"), "corpus '", sc.name, "': 'data' is "
             "required: an experiment's data section, e.g. {corpus: kjv}");
    cs.finish();
    for (const StudyCorpus& other : st.corpora)
      NA_CHECK(other.name != sc.name, cs.at("name"), "two corpora are named '", sc.name, "'");
    st.corpora.push_back(sc);
  }
  st.tune = parse_tune(s.node("tune"), path);
  {
    YamlSection m(s.node("match"), "match", path);
    st.budget = m.get_choice("budget", st.budget, {"params", "flops", "state"});
    st.tolerance = m.get_real("tolerance", st.tolerance, 0.0, 1.0);
    st.solve = m.get<std::string>("solve", st.solve);
    m.finish();
  }
  st.variants = parse_variants(s.node("variants"), path);
  {
    YamlSection d(s.node("distill"), "distill", path);
    st.distill_alpha = d.get_real("alpha", st.distill_alpha, 0.0, 1.0);
    st.distill_temperature = d.get_real("temperature", st.distill_temperature, 1e-3, 1e3);
    st.distill_top_k = d.get_int("top_k", st.distill_top_k, 0);
    d.finish();
  }
  {
    YamlSection g(s.node("generate"), "generate", path);
    st.generate_tokens = g.get_int("tokens", st.generate_tokens, 1, 10'000'000);
    g.finish();
  }
  YAML::Node q = s.node("quick");
  s.finish();
  if (quick) {
    NA_CHECK(q && q.IsMap(), path, "--quick needs a 'quick:' section (seeds, set, tune, variants) in the study file");
    apply_quick(st, q, path);
  }
  if (!corpus.empty()) {  // --corpus FILE: that text alone, named after its stem
    NA_CHECK(fs::is_regular_file(corpus), corpus, "--corpus: no such file");
    StudyCorpus sc;
    sc.name = fs::path(corpus).stem().string();
    for (char& c : sc.name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') c = '_';
    sc.data = YAML::Node(YAML::NodeType::Map);
    sc.data["corpus"] = fs::absolute(corpus).string();
    st.corpora = {sc};
  }
  for (StudyCorpus& c : st.corpora) {  // a corpus path is relative to the study file
    const std::string name = c.data["corpus"].Scalar();
    if (!is_named_corpus(name) && fs::path(name).is_relative()) c.data["corpus"] = (fs::path(st.dir) / name).string();
  }
  for (const std::string& set : sets) apply_override(st.experiment, set);
  return st;
}

}  // namespace na

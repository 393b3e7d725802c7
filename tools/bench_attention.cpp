// `nanoattn bench attention`: time and memory of attention plugins (with their Q/K/V/O
// projections) across sequence lengths, forward and forward + backward.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include "commands.h"
#include "plugin_loader.h"
#include "plugin_options.h"

namespace na::cli {

namespace {

struct AttentionBenchArgs {
  std::vector<std::string> plugins{"softmax", "linear"};
  std::vector<int64_t> lengths{1024, 4096};
  int64_t batch = 1, heads = 4, head_dim = 64;
  bool causal = true;
  int repeats = 3, threads = 0;
  std::vector<std::string> options;  // key=value, for every plugin that declares the key
  std::vector<std::string> plugin_dirs;
  std::string csv;
};

struct Row {
  std::string plugin;
  int64_t T;
  double fwd_ms, fwd_bwd_ms, tape_mib;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Row bench_one(const PluginRegistry& reg, const std::string& name, int64_t T, const AttentionBenchArgs& a) {
  const LoadedPlugin& plugin = reg.get(name);
  std::map<std::string, std::string> given;
  for (const std::string& kv : a.options) {
    size_t eq = kv.find('=');
    NA_CHECK(eq != std::string::npos, "bench attention", "--option '", kv, "' must be key=value");
    for (const OptionSpec& s : plugin.info->options)
      if (s.name == kv.substr(0, eq)) given[s.name] = kv.substr(eq + 1);
  }
  AttentionConfig config;
  config.d_model = a.heads * a.head_dim;
  config.n_heads = a.heads;
  config.max_len = T;
  config.causal = a.causal;
  config.options = resolve_options(*plugin.info, given, "--option");
  std::unique_ptr<IAttention> attn = reg.create(name, config);
  OwnedParams params = make_params(attn->parameters(), 1);
  Tensor x = Tensor::empty({a.batch, T, config.d_model});
  fill_normal(x, 2, 0.0f, 1.0f);
  Tensor seed = Tensor::empty(x.shape());
  fill_normal(seed, 3, 0.0f, 1.0f);

  auto time_ms = [&](bool backward) {
    std::vector<double> t;
    for (int r = 0; r <= a.repeats; ++r) {  // the first run warms up
      auto start = std::chrono::steady_clock::now();
      if (backward) {
        Var y = attn->forward(tape().leaf(x, true), params.set, {});
        tape().backward(y, seed);
      } else {
        NoGrad no_grad;
        attn->forward(tape().leaf(x), params.set, {});
      }
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (r > 0) t.push_back(ms);
      tape().reset();
    }
    return median(t);
  };
  Row row{name, T, time_ms(false), time_ms(true), 0};
  // Memory of one forward + backward: everything the step put in the tape's arena.
  Var y = attn->forward(tape().leaf(x, true), params.set, {});
  tape().backward(y, seed);
  row.tape_mib = tape().arena().bytes_in_use() / 1048576.0;
  tape().reset();
  return row;
}

void run_attention_bench(const AttentionBenchArgs& a) {
  set_num_threads(a.threads);
  PluginRegistry reg(a.plugin_dirs);
  std::printf("attention bench: batch %lld, %lld heads x %lld dims, %s, median of %d, %d threads\n\n",
              (long long)a.batch, (long long)a.heads, (long long)a.head_dim, a.causal ? "causal" : "bidirectional",
              a.repeats, num_threads());
  std::printf("| plugin | T | forward ms | fwd+bwd ms | fwd+bwd us/token | tape MiB |\n|---|---:|---:|---:|---:|---:|\n");
  std::vector<Row> rows;
  for (const std::string& name : a.plugins)
    for (int64_t T : a.lengths) {
      Row r = bench_one(reg, name, T, a);
      std::printf("| %s | %lld | %.2f | %.2f | %.2f | %.1f |\n", r.plugin.c_str(), (long long)r.T, r.fwd_ms,
                  r.fwd_bwd_ms, 1e3 * r.fwd_bwd_ms / (r.T * a.batch), r.tape_mib);
      std::fflush(stdout);
      rows.push_back(r);
    }
  if (!a.csv.empty()) {
    std::ofstream f(a.csv);
    NA_CHECK(f.good(), a.csv, "cannot write the CSV file");
    f << "plugin,T,batch,heads,head_dim,forward_ms,fwd_bwd_ms,tape_mib\n";
    for (const Row& r : rows)
      f << r.plugin << "," << r.T << "," << a.batch << "," << a.heads << "," << a.head_dim << "," << r.fwd_ms
        << "," << r.fwd_bwd_ms << "," << r.tape_mib << "\n";
  }
}

}  // namespace

void add_attention_bench(CLI::App& bench) {
  auto a = std::make_shared<AttentionBenchArgs>();
  auto* cmd = bench.add_subcommand("attention", "Time and memory of attention plugins across sequence lengths");
  cmd->add_option("--plugin", a->plugins, "plugins to run (repeatable)")->capture_default_str();
  cmd->add_option("--lengths", a->lengths, "sequence lengths")->delimiter(',')->capture_default_str();
  cmd->add_option("--batch", a->batch, "batch size")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--heads", a->heads, "heads")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--head-dim", a->head_dim, "dims per head")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_flag("!--bidirectional", a->causal, "attend to every position (default causal)");
  cmd->add_option("--option", a->options, "plugin option key=value (repeatable; given to plugins that declare it)");
  cmd->add_option("--plugin-path", a->plugin_dirs, "extra folder to search for plugins");
  cmd->add_option("--repeats", a->repeats, "timed repeats")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--threads", a->threads, "worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--csv", a->csv, "also write the rows to this CSV file");
  cmd->callback([a] { run_attention_bench(*a); });
}

}  // namespace na::cli

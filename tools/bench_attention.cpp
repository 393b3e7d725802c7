// `nanoattn bench attention`: time and memory of attention plugins (with their Q/K/V/O
// projections) across sequence lengths, forward and optionally forward + backward, as a table
// on stdout and optionally CSV + Markdown files (tools/analysis/plot_attention_bench.py plots
// the CSV).
//
// Each configuration (plugin, length) runs on a fresh thread, so it starts with an empty tape
// arena that is freed when it ends; large blocks are mmapped (mallopt), so freed memory leaves
// the process and the peak RSS of one configuration does not include the previous one's.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "bench_options.h"
#include "commands.h"
#include "plugin_loader.h"
#include "nanoattn/stop.h"
#include "plugin_options.h"

namespace na::cli {

namespace {

enum class Mode { Auto, Causal, Bidirectional };

struct AttentionBenchArgs {
  std::vector<std::string> plugins;  // empty: every plugin found
  std::vector<int64_t> lengths{1024, 4096};
  int64_t batch = 1, heads = 4, d_model = 256, projection_dim = 0;
  bool causal_flag = false, bidirectional_flag = false, backward = false;
  int repeats = 3, threads = 0;
  std::vector<std::string> options;  // key=value, for every plugin that declares the key
  std::vector<std::string> plugin_dirs;
  std::string csv, md, out;
};

struct Row {
  std::string plugin, mode, options;
  int64_t T = 0;
  double fwd_ms = NAN, fwd_mib = NAN, fwd_bwd_ms = NAN, fwd_bwd_mib = NAN, peak_rss_mib = NAN;
  std::string note;  // why the configuration did not run (then the numbers are NaN)
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The process's resident set and its high-water mark (kB), from /proc/self/status.
int64_t proc_status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::string(key).size()));
  return -1;
}

// Resets the high-water mark VmHWM to the current RSS (Linux >= 4.0); false if not allowed.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return f.good();
}

// The options given on the command line that `info` declares, as text, and projection_dim as
// `k` for plugins that declare it (Linformer's projection dim).
std::map<std::string, std::string> given_options(const PluginInfo& info, const AttentionBenchArgs& a) {
  std::map<std::string, std::string> given;
  auto declared = [&](const std::string& key) {
    return std::any_of(info.options.begin(), info.options.end(), [&](const OptionSpec& s) { return s.name == key; });
  };
  if (a.projection_dim > 0 && declared("k")) given["k"] = std::to_string(a.projection_dim);
  for (const std::string& kv : a.options) {
    const size_t eq = kv.find('=');
    if (declared(kv.substr(0, eq))) given[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return given;
}

// The --option values, checked before anything runs as a YAML `options:` map is (a key no
// plugin run declares, a wrong type, a value not among the choices): an error here exits 1, where
// inside a configuration it would only be a skipped row.
void validate_options(const PluginRegistry& reg, const AttentionBenchArgs& a) {
  for (const std::string& kv : a.options) {
    const std::string key = kv.substr(0, kv.find('='));
    bool used = false;
    for (const std::string& name : a.plugins)
      for (const OptionSpec& s : reg.get(name).info->options) used = used || s.name == key;
    if (used) continue;
    // One plugin: the same message as an unknown key in YAML, with its valid options.
    if (a.plugins.size() == 1) resolve_options(*reg.get(a.plugins[0]).info, {{key, ""}}, "--option " + kv);
    std::string names;
    for (const std::string& p : a.plugins) names += (names.empty() ? "" : ", ") + p;
    throw Error("--option " + kv, cat("none of the plugins run (", names, ") has an option '", key,
                                      "'; `nanoattn plugins` lists each plugin's options"));
  }
  for (const std::string& name : a.plugins) {
    const PluginInfo& info = *reg.get(name).info;
    for (const auto& [key, value] : given_options(info, a))
      resolve_options(info, {{key, value}}, "--option " + key + "=" + value);
  }
}

// One configuration, on the calling thread (a fresh one: its tape is empty).
void measure(const PluginRegistry& reg, const LoadedPlugin& plugin, bool causal, int64_t T,
             const AttentionBenchArgs& a, Row& row) {
  const std::map<std::string, std::string> given = given_options(*plugin.info, a);
  AttentionConfig config;
  config.d_model = a.d_model;
  config.n_heads = a.heads;
  config.max_len = T;
  config.causal = causal;
  config.seed = 1;
  config.options = resolve_options(*plugin.info, given, "--option");
  std::unique_ptr<IAttention> attn = reg.create(plugin.name, config);
  OwnedParams params = make_params(attn->parameters(), 1);
  Tensor x = Tensor::empty({a.batch, T, a.d_model});
  fill_normal(x, 2, 0.0f, 1.0f);
  Tensor seed = Tensor::empty(x.shape());
  fill_normal(seed, 3, 0.0f, 1.0f);

  // Median of `repeats` timed runs after the warm-up; the tape's arena use of the last run
  // (a bump allocator: what is in use at the end of a step is the step's peak). A warm-up that
  // grew the arena to several chunks makes reset() merge them into one fresh chunk, whose
  // pages a run would fault in on first touch (seconds at T = 1M); so warm up until a run
  // fits in the arena it started with, as every training step after the first does.
  auto run = [&](bool backward, double& mib) {
    std::vector<double> t;
    for (int r = 0, warmups = 0; r <= a.repeats; ++r) {
      const bool warmup = r == 0;
      auto start = std::chrono::steady_clock::now();
      if (backward) {
        Var y = attn->forward(tape().leaf(x, true), params.set, {});
        tape().backward(y, seed);
      } else {
        NoGrad no_grad;
        attn->forward(tape().leaf(x), params.set, {});
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (r > 0) t.push_back(ms);
      mib = tape().arena().bytes_in_use() / 1048576.0;
      const bool merges = tape().arena().chunk_count() > 1;
      tape().reset();
      if (warmup && merges && ++warmups < 3) r = -1;  // warm up again on the merged chunk
    }
    return median(t);
  };
  row.fwd_ms = run(false, row.fwd_mib);
  if (a.backward) row.fwd_bwd_ms = run(true, row.fwd_bwd_mib);
}

std::string fmt(double v, const char* f = "%.2f") {
  if (std::isnan(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string md_row(const Row& r, const AttentionBenchArgs& a) {
  const double tokens = double(r.T) * double(a.batch);
  const double per_token = a.backward ? r.fwd_bwd_ms : r.fwd_ms;
  std::string s = "| " + r.plugin + " | " + (r.options.empty() ? "" : r.options) + " | " + r.mode + " | " +
                  std::to_string(r.T) + " | ";
  if (!r.note.empty()) return s + "skipped: " + r.note + " |";
  s += fmt(r.fwd_ms) + " | " + fmt(r.fwd_mib, "%.1f") + " | ";
  if (a.backward) s += fmt(r.fwd_bwd_ms) + " | " + fmt(r.fwd_bwd_mib, "%.1f") + " | ";
  return s + fmt(1e3 * per_token / tokens) + " | " + fmt(r.peak_rss_mib, "%.1f") + " |";
}

std::string md_header(const AttentionBenchArgs& a) {
  std::string h = "| plugin | options | mode | T | forward ms | forward tape MiB | ";
  std::string sep = "|---|---|---|---:|---:|---:|";
  if (a.backward) {
    h += "fwd+bwd ms | fwd+bwd tape MiB | ";
    sep += "---:|---:|";
  }
  h += std::string(a.backward ? "fwd+bwd" : "forward") + " us/token | peak RSS MiB |";
  sep += "---:|---:|";
  return h + "\n" + sep;
}

void run_attention_bench(AttentionBenchArgs a) {
  NA_CHECK(!(a.causal_flag && a.bidirectional_flag), "bench attention",
           "give at most one of --causal and --bidirectional (neither: each plugin runs causal if it "
           "can, else bidirectional)");
  NA_CHECK(a.d_model % a.heads == 0, "bench attention", "--embedding-dim ", a.d_model,
           " must be a multiple of --num-heads ", a.heads);
  NA_CHECK(!a.lengths.empty(), "bench attention", "give at least one sequence length");
  for (int64_t T : a.lengths) NA_CHECK(T >= 1, "bench attention", "sequence lengths must be >= 1, got ", T);
  for (const std::string& kv : a.options)
    NA_CHECK(kv.find('=') != std::string::npos && kv.find('=') > 0, "bench attention", "--option '", kv,
             "' must be key=value");
  const Mode mode = a.causal_flag ? Mode::Causal : a.bidirectional_flag ? Mode::Bidirectional : Mode::Auto;
  if (!a.out.empty()) {
    std::filesystem::create_directories(a.out);
    if (a.csv.empty()) a.csv = (std::filesystem::path(a.out) / "attention_bench.csv").string();
    if (a.md.empty()) a.md = (std::filesystem::path(a.out) / "attention_bench.md").string();
  }
  set_num_threads(a.threads);
  // Large blocks (the tape's arena chunks, big tensors) get their own mappings and go back to
  // the system when freed, so one configuration's peak RSS does not carry into the next.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  PluginRegistry reg(a.plugin_dirs);
  if (a.plugins.empty())
    for (const LoadedPlugin& p : reg.plugins()) a.plugins.push_back(p.name);
  for (const std::string& name : a.plugins) reg.get(name);  // unknown names fail before any run
  validate_options(reg, a);
  const bool rss_ok = reset_peak_rss();

  const std::string mode_text = mode == Mode::Auto ? "causal where supported, else bidirectional"
                                : mode == Mode::Causal ? "causal" : "bidirectional";
  const std::string settings = cat("batch ", a.batch, ", d_model ", a.d_model, " (", a.heads, " heads x ",
                                   a.d_model / a.heads, " dims), ", mode_text, ", ",
                                   a.backward ? "forward and forward + backward" : "forward only",
                                   ", median of ", a.repeats, " after a warm-up, ", num_threads(), " threads");
  std::printf("attention bench: %s\n\n%s\n", settings.c_str(), md_header(a).c_str());
  std::fflush(stdout);
  std::vector<Row> rows;
  std::vector<std::string> notes;
  for (const std::string& name : a.plugins) {
    const LoadedPlugin& plugin = reg.get(name);
    const Capabilities& caps = plugin.capabilities;
    bool causal = caps.causal;
    if (mode == Mode::Causal && !caps.causal) {
      notes.push_back(name + ": skipped, it is bidirectional-only and --causal was given");
      std::printf("note: %s\n", notes.back().c_str());
      continue;
    }
    if (mode == Mode::Bidirectional) {
      if (!caps.bidirectional) {
        notes.push_back(name + ": skipped, it is causal-only and --bidirectional was given");
        std::printf("note: %s\n", notes.back().c_str());
        continue;
      }
      causal = false;
    }
    std::string opts;
    for (const auto& [k, v] : given_options(*plugin.info, a)) opts += (opts.empty() ? "" : " ") + k + "=" + v;
    for (int64_t T : a.lengths) {
      Row row;
      row.plugin = name;
      row.mode = causal ? "causal" : "bidirectional";
      row.options = opts;
      row.T = T;
      const int64_t rss_before = proc_status_kb("VmRSS:");
      if (rss_ok) reset_peak_rss();
      std::thread worker([&] {
        try {
          measure(reg, plugin, causal, T, a, row);
        } catch (const std::exception& e) {  // a configuration the plugin refuses, or out of memory
          row.note = e.what();
          row.fwd_ms = row.fwd_mib = row.fwd_bwd_ms = row.fwd_bwd_mib = NAN;
        }
      });
      worker.join();
      check_stop("benchmarking attention");  // a stop inside the worker only ended its row
      if (rss_ok && row.note.empty()) row.peak_rss_mib = (proc_status_kb("VmHWM:") - rss_before) / 1024.0;
      std::printf("%s\n", md_row(row, a).c_str());
      std::fflush(stdout);
      rows.push_back(row);
    }
  }
  if (!rss_ok) notes.push_back("peak RSS not measured: /proc/self/clear_refs is not writable here");
  notes.push_back(
      "tape MiB: everything the step put in the tape's arena (activations, saved values, "
      "gradients, kernel scratch); peak RSS MiB: the process's peak resident memory during the "
      "configuration minus its resident memory before it (parameters, input, tape, heap)");

  if (!a.csv.empty()) {
    std::ofstream f(a.csv);
    NA_CHECK(f.good(), a.csv, "cannot write the CSV file");
    f << "plugin,options,mode,T,batch,d_model,heads,threads,repeats,forward_ms,forward_tape_mib,fwd_bwd_ms,"
         "fwd_bwd_tape_mib,peak_rss_mib,note\n";
    for (const Row& r : rows)
      f << csv_field(r.plugin) << "," << csv_field(r.options) << "," << r.mode << "," << r.T << "," << a.batch
        << "," << a.d_model << "," << a.heads << "," << num_threads() << "," << a.repeats << "," << fmt(r.fwd_ms, "%.4f")
        << "," << fmt(r.fwd_mib, "%.3f") << "," << fmt(r.fwd_bwd_ms, "%.4f") << "," << fmt(r.fwd_bwd_mib, "%.3f")
        << "," << fmt(r.peak_rss_mib, "%.3f") << "," << csv_field(r.note) << "\n";
    std::printf("\nwrote %s\n", a.csv.c_str());
  }
  if (!a.md.empty()) {
    std::ofstream f(a.md);
    NA_CHECK(f.good(), a.md, "cannot write the Markdown file");
    f << "Attention bench: " << settings << ".\n\n" << md_header(a) << "\n";
    for (const Row& r : rows) f << md_row(r, a) << "\n";
    f << "\n";
    for (const std::string& n : notes) f << "- " << n << "\n";
    std::printf("wrote %s\n", a.md.c_str());
  }
}

}  // namespace

void add_attention_bench(CLI::App& bench) {
  auto a = std::make_shared<AttentionBenchArgs>();
  auto* cmd = bench.add_subcommand(
      "attention",
      "Time and memory of attention plugins across sequence lengths (default: every plugin found; "
      "each runs causal if it can, else bidirectional)");
  cmd->add_option("--plugin", a->plugins, "plugin to run (repeatable; default: every plugin found)");
  cmd->add_option("--sweep-lengths,--sequence-length,--lengths", a->lengths,
                  "sequence lengths, comma-separated (or repeated)")
      ->delimiter(',')
      ->transform(integer_option<int64_t>())
      ->capture_default_str();
  cmd->add_option("--batch-size,--batch", a->batch, "batch size")
      ->transform(integer_option<int64_t>())
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--embedding-dim,--d-model", a->d_model, "model width C (heads x head dim)")
      ->transform(integer_option<int64_t>())
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--num-heads,--heads", a->heads, "heads")
      ->transform(integer_option<int64_t>())
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--projection-dim", a->projection_dim,
                  "projection dim: sets option k of the plugins that declare it (linformer)")
      ->transform(integer_option<int64_t>())
      ->check(CLI::PositiveNumber);
  cmd->add_option("--option", a->options,
                  "plugin option key=value (repeatable; given to every plugin that declares the key)");
  cmd->add_flag("--causal", a->causal_flag, "run causal only (skip bidirectional-only plugins, with a note)");
  cmd->add_flag("--bidirectional", a->bidirectional_flag,
                "run bidirectional only (skip causal-only plugins, with a note)");
  cmd->add_flag("--backward", a->backward, "time forward + backward as well as forward");
  cmd->add_option("--repeats", a->repeats, "timed repeats (after one warm-up)")
      ->transform(integer_option<int>())
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "worker threads (0 = all cores)")
      ->transform(integer_option<int>())
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--plugin-path", a->plugin_dirs, "extra folder to search for plugins (repeatable)");
  cmd->add_option("--csv", a->csv, "write the rows to this CSV file");
  cmd->add_option("--md", a->md, "write the table to this Markdown file");
  cmd->add_option("--out", a->out,
                  "folder for attention_bench.csv and attention_bench.md (unless --csv / --md say otherwise)");
  cmd->callback([a] { run_attention_bench(*a); });
}

}  // namespace na::cli

// kl_text / kl_json: the KL report for a terminal and for scripts.
#include <cstdio>

#include "dump/kl.h"
#include "nanoattn/error.h"

namespace na {
namespace {

std::string num(double x, const char* fmt = "%.4f") {
  if (std::isnan(x)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

nlohmann::json jnum(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

nlohmann::json stats_json(const DivStats& s) {
  return {{"mean", jnum(s.mean)}, {"median", jnum(s.median)}, {"p90", jnum(s.p90)}, {"p99", jnum(s.p99)},
          {"max", jnum(s.max)}};
}

std::string pad(std::string s, size_t w, bool right = true) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

// Token text for a terminal: newlines and tabs visible.
std::string shown(const std::string& token) {
  std::string s;
  for (char c : token) s += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : std::string(1, c);
  return s;
}

std::string token_text(const KlReport& r, int32_t id) {
  const auto& v = r.a.vocab;
  return id >= 0 && id < static_cast<int32_t>(v.size()) ? v[id] : cat("<", id, ">");
}

std::string context_text(const KlReport& r, const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (r.a.unit == "bpw" && i) s += ' ';  // words are shown space-separated
    s += token_text(r, ids[i]);
  }
  return s;
}

std::string who(const std::string& path, const DumpInfo& d) {
  return cat(path, " (run ", d.run_name, ", ", d.model, ", step ", d.checkpoint_step, ", ", dump_dtype_name(d.dtype), ")");
}

}  // namespace

std::string kl_text(const KlReport& r) {
  std::string out = cat("KL divergence in bits per token (log base 2, like ", r.a.unit, ") over ", r.tokens,
                        " tokens of split ", r.a.split, " (vocabulary ", r.vocab, ")\n  A: ", who(r.path_a, r.a),
                        "\n  B: ", who(r.path_b, r.b), "\n\n");
  out += pad("", 10, false) + pad("mean", 10) + pad("median", 10) + pad("p90", 10) + pad("p99", 10) + pad("max", 10) + "\n";
  auto row = [&](const char* name, const DivStats& s) {
    out += pad(name, 10, false) + pad(num(s.mean), 10) + pad(num(s.median), 10) + pad(num(s.p90), 10) +
           pad(num(s.p99), 10) + pad(num(s.max), 10) + "\n";
  };
  row("KL(A||B)", r.kl_ab);
  row("KL(B||A)", r.kl_ba);
  row("JS", r.js);
  const std::string u = r.a.unit;
  out += cat("\n", u, ": A ", num(r.bits_a), ", B ", num(r.bits_b), ", B - A ", num(r.bits_b - r.bits_a, "%+.4f"),
             "\n\nby context position (KL(A||B): mean, median, p90, p99, max; the others: mean):\n");
  const std::vector<std::string> head = {"positions", "tokens", "mean", "median", "p90",   "p99",
                                         "max",       "KL(B||A)", "JS",  u + " A", u + " B", "B - A"};
  std::vector<std::vector<std::string>> rows = {head};
  for (const KlBucket& b : r.buckets)
    rows.push_back({b.first == b.last ? cat(b.first) : cat(b.first, "-", b.last), cat(b.tokens), num(b.kl_ab.mean),
                    num(b.kl_ab.median), num(b.kl_ab.p90), num(b.kl_ab.p99), num(b.kl_ab.max), num(b.kl_ba.mean),
                    num(b.js.mean), num(b.bits_a), num(b.bits_b), num(b.bits_b - b.bits_a, "%+.4f")});
  for (const auto& cells : rows) {
    for (size_t c = 0; c < cells.size(); ++c) out += c == 0 ? pad(cells[c], 10, false) : pad(cells[c], c == 1 ? 8 : 9);
    out += "\n";
  }
  if (!r.top.empty()) out += cat("\nthe ", r.top.size(), " tokens with the largest JS divergence ([input] -> target):\n");
  for (size_t i = 0; i < r.top.size(); ++i) {
    const KlToken& t = r.top[i];
    std::vector<int32_t> before(t.context.begin(), t.context.end() - 1);
    out += cat("  ", i + 1, ". index ", t.index, ", position ", t.position, ": JS ", num(t.js), ", KL(A||B) ",
               num(t.kl_ab), ", KL(B||A) ", num(t.kl_ba), "\n     \"", shown(context_text(r, before)), "[",
               shown(token_text(r, t.input)), "]\" -> '", shown(token_text(r, t.target)), "': A p ",
               num(t.p_target_a, "%.3f"), " (likeliest '", shown(token_text(r, t.argmax_a)), "'), B p ",
               num(t.p_target_b, "%.3f"), " (likeliest '", shown(token_text(r, t.argmax_b)), "')\n");
  }
  return out;
}

nlohmann::json kl_json(const KlReport& r) {
  auto side = [](const std::string& path, const DumpInfo& d, double bits) {
    return nlohmann::json{{"path", path},   {"run", d.run_name}, {"model", d.model},         {"step", d.checkpoint_step},
                          {"dtype", dump_dtype_name(d.dtype)}, {"split", d.split}, {"seq_len", d.seq_len}, {"bits", jnum(bits)}};
  };
  nlohmann::json j = {{"a", side(r.path_a, r.a, r.bits_a)},
                      {"b", side(r.path_b, r.b, r.bits_b)},
                      {"tokens", r.tokens},
                      {"vocab", r.vocab},
                      {"unit", r.a.unit},
                      {"divergence_units", "bits"},
                      {"kl_ab", stats_json(r.kl_ab)},
                      {"kl_ba", stats_json(r.kl_ba)},
                      {"js", stats_json(r.js)},
                      {"bits_diff", jnum(r.bits_b - r.bits_a)}};
  j["buckets"] = nlohmann::json::array();
  for (const KlBucket& b : r.buckets)
    j["buckets"].push_back({{"first", b.first},         {"last", b.last},         {"tokens", b.tokens},
                            {"kl_ab", stats_json(b.kl_ab)}, {"kl_ba", stats_json(b.kl_ba)}, {"js", stats_json(b.js)},
                            {"bits_a", jnum(b.bits_a)}, {"bits_b", jnum(b.bits_b)}});
  j["top"] = nlohmann::json::array();
  for (const KlToken& t : r.top) {
    std::vector<int32_t> before(t.context.begin(), t.context.end() - 1);
    j["top"].push_back({{"index", t.index},
                        {"position", t.position},
                        {"context", context_text(r, before)},
                        {"input", token_text(r, t.input)},
                        {"target", token_text(r, t.target)},
                        {"kl_ab", jnum(t.kl_ab)},
                        {"kl_ba", jnum(t.kl_ba)},
                        {"js", jnum(t.js)},
                        {"p_target_a", jnum(t.p_target_a)},
                        {"p_target_b", jnum(t.p_target_b)},
                        {"likeliest_a", token_text(r, t.argmax_a)},
                        {"likeliest_b", token_text(r, t.argmax_b)}});
  }
  return j;
}

}  // namespace na

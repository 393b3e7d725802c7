// `nanoattn kl A.h5 B.h5 [--out kl.h5] [--json]`: token-by-token divergence between two
// prediction dumps of the same tokens (e.g. a softmax and a linear-attention model).
#include <cstdio>
#include <memory>
#include <optional>

#include "commands.h"
#include "dump/kl.h"
#include "util/files.h"
#include "util/folder_lock.h"

namespace na::cli {
namespace {

struct KlArgs {
  std::string a, b, out;
  bool json = false;
  int64_t top = 10;
};

void run_kl(const KlArgs& a) {
  // --out must not replace a dump it reads, and no other nanoattn may write into its folder.
  std::optional<FolderLock> lock;
  if (!a.out.empty()) {
    refuse_overwriting_inputs({a.out, FolderLock::file_next_to(a.out)}, {a.a, a.b}, "give --out another path");
    lock.emplace(FolderLock::for_file(a.out, "the KL file"));
  }
  KlOptions opt;
  opt.out = a.out;
  opt.top = a.top;
  const KlReport r = compare_dumps(a.a, a.b, opt);
  if (a.json) {
    nlohmann::json j = kl_json(r);
    if (!a.out.empty()) j["out"] = a.out;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::fputs(kl_text(r).c_str(), stdout);
  if (!a.out.empty()) std::printf("\nper-token values: %s\n", a.out.c_str());
}

}  // namespace

void add_kl_command(CLI::App& app) {
  auto a = std::make_shared<KlArgs>();
  auto* cmd = app.add_subcommand("kl", "KL(P_A || P_B), KL(P_B || P_A) and Jensen-Shannon divergence, in bits, "
                                       "between two prediction dumps of the same tokens");
  cmd->add_option("A", a->a, "prediction dump (`nanoattn eval <checkpoint> --dump A.h5`)")->required();
  cmd->add_option("B", a->b, "prediction dump of the same split, made with the same --seq-len")->required();
  cmd->add_option("--out", a->out, "write the per-token divergences and the by-position summaries to this HDF5 file");
  cmd->add_option("--top", a->top, "show this many tokens with the largest JS divergence")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a] { run_kl(*a); });
}

}  // namespace na::cli

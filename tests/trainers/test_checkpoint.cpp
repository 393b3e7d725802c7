#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "data/tokenizer.h"
#include "io/h5.h"
#include "nanoattn/error.h"
#include "nanoattn/version.h"
#include "optim/adamw.h"

using namespace na;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, unique per process and per test, removed at exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("nanoattn_test_ckpt_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(++counter));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string what_of(const std::function<void()>& f) {
  try { f(); } catch (const Error& e) { return e.what(); }
  return "(no error)";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0;
}

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

Tensor pattern(const Shape& shape, int salt) {
  Tensor t = Tensor::empty(shape);
  for (int64_t j = 0; j < t.numel(); ++j) t[j] = static_cast<float>(std::sin(0.37 * j + salt) * (1 + salt));
  return t;
}

std::vector<std::string> leftover_temps(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (has(e.path().filename().string(), ".tmp-")) out.push_back(e.path().string());
  return out;
}

// Parameters in a deliberately unsorted order, plus an AdamW that has taken two steps on them.
struct Trained {
  std::vector<std::unique_ptr<Parameter>> owned;
  std::vector<Parameter*> ps;
  std::unique_ptr<AdamW> opt;

  void grads(int step) {
    for (size_t i = 0; i < ps.size(); ++i)
      for (int64_t j = 0; j < ps[i]->grad().numel(); ++j)
        ps[i]->grad()[j] = static_cast<float>(std::cos(0.11 * j + 7.0 * step + static_cast<double>(i)));
  }

  explicit Trained(const std::vector<std::pair<std::string, Tensor>>& values) {
    for (const auto& [name, value] : values) {
      owned.push_back(std::make_unique<Parameter>(name, value.clone()));
      ps.push_back(owned.back().get());
    }
    opt = std::make_unique<AdamW>(ps);
  }

  static std::vector<std::pair<std::string, Tensor>> initial() {
    return {{"tok.weight", pattern({66, 8}, 1)},
            {"blocks.0.attn.qkv.weight", pattern({8, 24}, 2)},
            {"blocks.10.ln1.bias", pattern({8}, 3)},
            {"blocks.2.ln1.bias", pattern({8}, 4)},
            {"pos.weight", pattern({2, 3, 1, 2, 4}, 5)},
            {"ln_f.scale", pattern({}, 6)}};
  }
};

// A checkpoint with every field set to something a sloppy writer would get wrong.
Checkpoint sample_checkpoint(const Trained& t) {
  Checkpoint ck;
  ck.nanoattn_version = "9.8.7-test";
  ck.run_name = "softmax-vs-linear/α=0.5 ✓";
  ck.config_yaml = "# résumé: 日本語 🚀\nd_model: 128\nblocks:\n  - token_embedding: {name: tok}\n\tindented\r\nlast line\n";
  ck.step = 123456789012;
  ck.seed = std::numeric_limits<uint64_t>::max() - 5;  // beyond int64: must stay unsigned
  ck.data_cursor = (uint64_t{1} << 40) + 7;
  ck.tokenizer = Tokenizer::build_char("hello, world\n\xff\x01").serialize();
  ck.plugins = {{"softmax", std::string(64, 'a')}, {"linear", std::string(64, 'b')}, {"cosine", "0123abcd"}};
  for (const Parameter* p : t.ps) ck.params.emplace_back(p->name(), p->value().clone());
  // Bit patterns that a conversion or a text round trip would change.
  ck.params.emplace_back("specials", Tensor::from({7}, {-0.0f, std::numeric_limits<float>::infinity(),
                                                        -std::numeric_limits<float>::infinity(),
                                                        from_bits(0x7fc12345u), from_bits(1u),
                                                        std::numeric_limits<float>::max(), 1.0f / 3.0f}));
  ck.optimizer = "adamw";
  ck.optimizer_steps = t.opt->step_count();
  ck.optim = t.opt->state();
  ck.best_val_bpc = 1.2345678901234567;
  ck.elapsed_s = 3600.125;
  return ck;
}

Trained trained_two_steps() {
  Trained t(Trained::initial());
  for (int step = 1; step <= 2; ++step) {
    t.grads(step);
    t.opt->step(1e-2f);
  }
  return t;
}

void check_same_header(const Checkpoint& a, const Checkpoint& b) {
  CHECK(b.format_version == Checkpoint::kFormatVersion);
  CHECK(b.nanoattn_version == a.nanoattn_version);
  CHECK(b.run_name == a.run_name);
  CHECK(b.config_yaml == a.config_yaml);
  CHECK(b.step == a.step);
  CHECK(b.seed == a.seed);
  CHECK(b.data_cursor == a.data_cursor);
  CHECK(b.tokenizer == a.tokenizer);
  CHECK(b.plugins == a.plugins);
  CHECK(b.optimizer == a.optimizer);
  CHECK(b.optimizer_steps == a.optimizer_steps);
  CHECK(std::memcmp(&b.best_val_bpc, &a.best_val_bpc, sizeof(double)) == 0);
  CHECK(std::memcmp(&b.elapsed_s, &a.elapsed_s, sizeof(double)) == 0);
}

void check_same_tensors(const std::vector<std::pair<std::string, Tensor>>& a,
                        const std::vector<std::pair<std::string, Tensor>>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].first);
    CHECK(b[i].first == a[i].first);  // same order, not just the same set
    CHECK(same_bits(a[i].second, b[i].second));
  }
}

// Runs f with the process's stderr sent to a file and returns what was written there.
std::string captured_stderr(const std::string& file, const std::function<void()>& f) {
  std::fflush(stderr);
  const int saved = dup(2);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  dup2(fd, 2);
  ::close(fd);
  f();
  std::fflush(stderr);
  dup2(saved, 2);
  ::close(saved);
  return read_bytes(file);
}

}  // namespace

// ---- the HDF5 layer ------------------------------------------------------------------------

TEST_CASE("h5: tensors of rank 0 to 5 and every attribute type round-trip; listings keep creation order") {
  TempDir dir("h5_roundtrip");
  const std::string path = dir.file("t.h5");
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"/z/scalar", pattern({}, 1)},        {"/z/a/vec", pattern({5}, 2)},
      {"/m", pattern({3, 4}, 3)},           {"/z/b3", pattern({2, 3, 4}, 4)},
      {"/z/a/r4", pattern({1, 2, 3, 2}, 5)}, {"/z/r5", pattern({2, 1, 2, 1, 3}, 6)},
      {"/z/empty", Tensor::zeros({0, 3})}};
  {
    h5::File f = h5::File::create(path);
    for (const auto& [name, t] : tensors) f.write(name, t);
    f.set_attr_string("/z", "s", "line1\nline2 ✓");
    f.set_attr_int64("/z/a/vec", "i", -42);
    f.set_attr_uint64("/", "u", std::numeric_limits<uint64_t>::max());
    f.set_attr_double("/", "d", -0.1);
    f.set_attr_double("/", "d", 2.5);  // replaces
    for (const char* name : {"zeta", "alpha", "mid"}) f.set_attr_string("/m", name, name);
    f.close();
  }
  h5::File f = h5::File::open(path);
  for (const auto& [name, t] : tensors) {
    CAPTURE(name);
    CHECK(f.dataset_shape(name) == t.shape());
    CHECK(same_bits(f.read(name), t));
    Tensor into = Tensor::empty(t.shape());
    f.read_into(name, into);
    CHECK(same_bits(into, t));
  }
  CHECK(f.attr_string("/z", "s") == "line1\nline2 ✓");
  CHECK(f.attr_int64("/z/a/vec", "i") == -42);
  CHECK(f.attr_uint64("/", "u") == std::numeric_limits<uint64_t>::max());
  CHECK(f.attr_double("/", "d") == 2.5);
  CHECK(f.attr_names("/m") == std::vector<std::string>{"zeta", "alpha", "mid"});
  // Depth-first, each group in creation order: z was created before m.
  CHECK(f.datasets("/") == std::vector<std::string>{"z/scalar", "z/a/vec", "z/a/r4", "z/b3", "z/r5", "z/empty", "m"});
  CHECK(f.datasets("/z/a") == std::vector<std::string>{"vec", "r4"});
  CHECK(f.has("/z/a"));
  CHECK(f.has_group("/z/a"));
  CHECK_FALSE(f.has_dataset("/z/a"));
  CHECK(f.has_dataset("/z/a/r4"));
  CHECK_FALSE(f.has("/nope/deeper/x"));  // a missing intermediate group is just false
  CHECK_FALSE(f.has_dataset("/m/under_a_dataset"));
  CHECK(f.has_attr("/z", "s"));
  CHECK_FALSE(f.has_attr("/z", "t"));
  CHECK_FALSE(f.has_attr("/nope", "s"));
}

TEST_CASE("h5: errors name the file and the object, and HDF5 prints nothing itself") {
  TempDir dir("h5_errors");
  const std::string path = dir.file("ck.h5");
  {
    h5::File f = h5::File::create(path);
    f.write("/params/tok.weight", Tensor::zeros({65, 128}));
    f.set_attr_string("/", "name", "x");
    f.write("/ints", Tensor::zeros({2}));
  }
  std::string stderr_text = captured_stderr(dir.file("stderr.txt"), [&] {
    h5::File f = h5::File::open(path, h5::File::Mode::ReadWrite);
    CHECK(what_of([&] { f.read_into("/params/tok.weight", Tensor::empty({66, 128})); }) ==
          path + ": dataset /params/tok.weight: shape (65, 128) expected (66, 128)");
    CHECK(what_of([&] { f.read("/params/nope"); }) == path + ": dataset /params/nope: missing");
    CHECK(what_of([&] { f.read("/params"); }) == path + ": dataset /params: exists but is not a dataset (a group?)");
    CHECK(what_of([&] { f.attr_int64("/", "name"); }) ==
          path + ": attribute 'name' of /: expected an integer, found a string");
    CHECK(what_of([&] { f.attr_string("/", "other"); }) == path + ": attribute 'other' of /: missing");
    CHECK(what_of([&] { f.attr_string("/nope", "other"); }) ==
          path + ": attribute 'other' of /nope: no such group or dataset");
    CHECK(what_of([&] { f.write("/params/tok.weight", Tensor::zeros({1})); }) ==
          path + ": dataset /params/tok.weight: already exists");
    CHECK(what_of([&] { f.write("/ints/under", Tensor::zeros({1})); }) ==
          path + ": group /ints: something that is not a group already has that name");
    CHECK(has(what_of([&] { f.set_attr_string("/", "s", std::string("a\0b", 3)); }), "NUL byte at offset 1"));
    CHECK(what_of([&] { f.remove("/nope"); }) == path + ": /nope: no such group or dataset to remove");
    CHECK_FALSE(f.has("/ints/under"));  // HDF5 itself fails here: a dataset has no members
    f.close();
    CHECK(what_of([&] { f.has("/"); }) == path + ": the file was closed");
    // Calls that fail inside HDF5 (H5Fcreate, H5Fopen).
    CHECK(what_of([&] { h5::File::create(dir.file("no/such/dir/x.h5")); }) ==
          dir.file("no/such/dir/x.h5") + ": cannot create it: directory " + dir.file("no/such/dir") + " does not exist");
    fs::copy_file(path, dir.file("half.h5"));
    fs::resize_file(dir.file("half.h5"), fs::file_size(path) / 2);
    CHECK(has(what_of([&] { h5::File::open(dir.file("half.h5")); }), "(HDF5: truncated file"));
  });
  CHECK(stderr_text.empty());  // HDF5's automatic "HDF5-DIAG: Error detected" dump is off
  CHECK(what_of([&] { h5::File::open(dir.file("missing.h5")); }) == dir.file("missing.h5") + ": no such file: check the path");
  CHECK(what_of([&] { h5::File::open(dir.path.string()); }) == dir.path.string() + ": is a directory, not an HDF5 file");
}

// ---- checkpoints ---------------------------------------------------------------------------

TEST_CASE("checkpoint: a save/load round trip is bitwise, in order, for every field") {
  TempDir dir("roundtrip");
  Trained t = trained_two_steps();
  Checkpoint ck = sample_checkpoint(t);
  ck.tokenizer += std::string(300000, 'f');  // far beyond HDF5's 64 KiB compact-attribute limit
  const std::string path = dir.file("ck.h5");
  save_checkpoint(path, ck);

  Checkpoint back = load_checkpoint(path);
  check_same_header(ck, back);
  check_same_tensors(ck.params, back.params);
  check_same_tensors(ck.optim, back.optim);
  REQUIRE(back.optim.size() == 2 * t.ps.size());
  CHECK(back.optim[0].first == "tok.weight/m");
  CHECK(back.optim[1].first == "tok.weight/v");

  Checkpoint header = read_checkpoint_header(path);
  check_same_header(ck, header);
  CHECK(header.params.empty());
  CHECK(header.optim.empty());

  // Defaults: an empty version becomes this build's, NaN best_val_bpc survives as NaN.
  Checkpoint plain;
  save_checkpoint(dir.file("plain.h5"), plain);
  Checkpoint plain_back = load_checkpoint(dir.file("plain.h5"));
  CHECK(plain_back.nanoattn_version == NANOATTN_VERSION);
  CHECK(std::isnan(plain_back.best_val_bpc));
  CHECK(plain_back.params.empty());
  CHECK(plain_back.plugins.empty());
}

TEST_CASE("checkpoint: resuming from a loaded checkpoint continues training bit for bit") {
  TempDir dir("resume");
  Trained a = trained_two_steps();
  save_checkpoint(dir.file("ck.h5"), sample_checkpoint(a));

  Checkpoint ck = load_checkpoint(dir.file("ck.h5"));
  ck.params.pop_back();  // "specials" is not trained
  Trained b(ck.params);
  b.opt->load_state(ck.optim, ck.optimizer_steps);
  for (int step = 3; step <= 4; ++step) {
    a.grads(step);
    a.opt->step(1e-2f);
    b.grads(step);
    b.opt->step(1e-2f);
  }
  for (size_t i = 0; i < a.ps.size(); ++i) {
    CAPTURE(a.ps[i]->name());
    CHECK(same_bits(a.ps[i]->value(), b.ps[i]->value()));
  }
}

TEST_CASE("checkpoint: the file holds exactly the layout docs/FORMATS.md documents") {
  TempDir dir("layout");
  Trained t = trained_two_steps();
  const std::string path = dir.file("ck.h5");
  save_checkpoint(path, sample_checkpoint(t));
  h5::File f = h5::File::open(path);
  CHECK(f.attr_names("/") == std::vector<std::string>{"format", "format_version", "nanoattn_version", "run_name",
                                                       "config", "step", "seed", "data_cursor", "tokenizer",
                                                       "optimizer", "optimizer_steps", "best_val_bpc", "best_step",
                                                       "elapsed_s"});
  CHECK(f.attr_string("/", "format") == "nanoattn-checkpoint");
  CHECK(f.attr_int64("/", "format_version") == 1);
  CHECK(f.datasets("/") .size() == 7 + 12);
  CHECK(f.attr_names("/plugins") == std::vector<std::string>{"softmax", "linear", "cosine"});
  // Dotted names are flat dataset names, not nested groups.
  CHECK(f.has_dataset("/params/blocks.0.attn.qkv.weight"));
  CHECK(f.dataset_shape("/params/blocks.0.attn.qkv.weight") == Shape{8, 24});
  CHECK(f.has_dataset("/optim/tok.weight/m"));
  CHECK(f.has_dataset("/optim/tok.weight/v"));
  CHECK(f.dataset_shape("/optim/tok.weight/v") == Shape{66, 8});
}

TEST_CASE("checkpoint: saving is atomic; a failed save leaves the previous file and no temp file") {
  TempDir dir("atomic");
  Trained t = trained_two_steps();
  const std::string path = dir.file("ck.h5");
  Checkpoint first = sample_checkpoint(t);
  save_checkpoint(path, first);
  const std::string bytes = read_bytes(path);
  struct stat st0 {};
  REQUIRE(stat(path.c_str(), &st0) == 0);

  auto check_untouched = [&] {
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK(st.st_ino == st0.st_ino);
    CHECK(read_bytes(path) == bytes);
    CHECK(leftover_temps(dir.path).empty());
    CHECK(load_checkpoint(path).step == first.step);
  };

  SUBCASE("a duplicate parameter name: HDF5 refuses it midway through writing") {
    Checkpoint bad = first;
    bad.step = 1;
    bad.params.push_back(bad.params.front());
    const std::string e = what_of([&] { save_checkpoint(path, bad); });
    CHECK(has(e, path + ": checkpoint not saved (any previous file there is untouched): "));
    CHECK(has(e, "dataset /params/tok.weight: already exists"));
    check_untouched();
  }
  SUBCASE("a parameter name HDF5 would read as a path") {
    Checkpoint bad = first;
    bad.step = 1;
    bad.params.emplace_back("blocks/0", Tensor::zeros({1}));
    CHECK(has(what_of([&] { save_checkpoint(path, bad); }),
              "parameter name 'blocks/0' cannot be an HDF5 dataset name: it must be non-empty, not '.', and contain no '/'"));
    check_untouched();
  }
  SUBCASE("an optimizer buffer not named <param>/<slot>") {
    Checkpoint bad = first;
    bad.optim.emplace_back("no_slot", Tensor::zeros({1}));
    CHECK(has(what_of([&] { save_checkpoint(path, bad); }), "optimizer buffer 'no_slot' is not named '<param>/<slot>'"));
    check_untouched();
  }
  SUBCASE("a plugin listed twice") {
    Checkpoint bad = first;
    bad.plugins.push_back(bad.plugins.front());
    CHECK(has(what_of([&] { save_checkpoint(path, bad); }), "plugin 'softmax' is listed twice"));
    check_untouched();
  }
  SUBCASE("a directory that does not exist") {
    const std::string elsewhere = dir.file("missing_dir/ck.h5");
    CHECK(has(what_of([&] { save_checkpoint(elsewhere, first); }),
              "directory " + dir.file("missing_dir") + " does not exist"));
    CHECK_FALSE(fs::exists(dir.file("missing_dir")));
    check_untouched();
  }
  SUBCASE("a successful overwrite replaces the file through a rename") {
    Checkpoint second = first;
    second.step = 777;
    second.params.front().second = pattern({66, 8}, 42);
    save_checkpoint(path, second);
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK(st.st_ino != st0.st_ino);  // a new file renamed into place, not rewritten in place
    CHECK(leftover_temps(dir.path).empty());
    Checkpoint back = load_checkpoint(path);
    CHECK(back.step == 777);
    CHECK(same_bits(back.params.front().second, second.params.front().second));
  }
}

TEST_CASE("checkpoint: each kind of bad file gets its own message saying what to do") {
  TempDir dir("load_errors");
  Trained t = trained_two_steps();
  const std::string good = dir.file("good.h5");
  save_checkpoint(good, sample_checkpoint(t));
  // A copy of the good checkpoint changed through the HDF5 layer.
  auto edited = [&](const std::string& name, const std::function<void(h5::File&)>& edit) {
    const std::string p = dir.file(name);
    fs::copy_file(good, p);
    h5::File f = h5::File::open(p, h5::File::Mode::ReadWrite);
    edit(f);
    f.close();
    return p;
  };

  const std::string missing = dir.file("missing.h5");
  CHECK(what_of([&] { load_checkpoint(missing); }) == missing + ": no such file: check the path");

  const std::string text = dir.file("notes.h5");
  std::ofstream(text) << "step: 100\nthis is not HDF5\n";
  CHECK(what_of([&] { load_checkpoint(text); }) ==
        text + ": not an HDF5 file (it lacks the HDF5 signature): pass a .h5 file written by nanoattn or h5py");

  const std::string other = dir.file("other.h5");
  {
    h5::File f = h5::File::create(other);
    f.write("/logprobs", Tensor::zeros({4, 3}));
    f.set_attr_string("/", "model", "charlm");
  }
  CHECK(what_of([&] { load_checkpoint(other); }) ==
        other + ": an HDF5 file, but not a nanoattn checkpoint (it has no 'format' attribute on /): pass a "
                "checkpoint written by nanoattn");
  const std::string wrong_format = edited("wrong_format.h5", [](h5::File& f) { f.set_attr_string("/", "format", "nanoattn-dump"); });
  CHECK(has(what_of([&] { load_checkpoint(wrong_format); }), "its 'format' attribute is 'nanoattn-dump', expected 'nanoattn-checkpoint'"));

  const std::string v2 = edited("v2.h5", [](h5::File& f) { f.set_attr_int64("/", "format_version", 2); });
  for (const auto& load : {std::function<void()>([&] { load_checkpoint(v2); }),
                           std::function<void()>([&] { read_checkpoint_header(v2); })}) {
    const std::string e = what_of(load);
    CHECK(has(e, v2 + ": written by format version 2, this nanoattn reads version 1: "));
    CHECK(has(e, "load it with a newer nanoattn that reads version 2 (nanoattn 9.8.7-test wrote it"));
  }

  const std::string no_step = edited("no_step.h5", [](h5::File& f) { f.remove_attr("/", "data_cursor"); });
  CHECK(what_of([&] { load_checkpoint(no_step); }) ==
        no_step + ": attribute 'data_cursor' of / is missing: the checkpoint is incomplete or damaged: resume from "
                  "another checkpoint of the run (or retrain)");

  const std::string no_params = edited("no_params.h5", [](h5::File& f) { f.remove("/params"); });
  CHECK(has(what_of([&] { load_checkpoint(no_params); }), no_params + ": group /params is missing: the checkpoint is incomplete"));
  CHECK(read_checkpoint_header(no_params).step == 123456789012);  // the header does not need tensors

  const std::string no_dataset = edited("no_dataset.h5", [](h5::File& f) { f.remove("/params/blocks.2.ln1.bias"); });
  CHECK(has(what_of([&] { load_checkpoint(no_dataset); }),
            no_dataset + ": dataset /params/blocks.2.ln1.bias is missing, though /optim/blocks.2.ln1.bias holds "
                         "optimizer state for it: the checkpoint is incomplete"));

  const std::string truncated = dir.file("truncated.h5");
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, fs::file_size(good) / 2);
  const std::string e = what_of([&] { load_checkpoint(truncated); });
  CHECK(has(e, truncated + ": an HDF5 file that HDF5 cannot open: it is truncated or corrupt"));
  CHECK(has(e, "(HDF5: truncated file"));  // HDF5's own diagnosis is passed on
}

TEST_CASE("checkpoint: h5dump reads a checkpoint") {
  REQUIRE_MESSAGE(std::system("command -v h5dump > /dev/null 2>&1") == 0,
                  "h5dump is not on PATH: run tools/setup.sh (it installs Debian's hdf5-tools)");
  TempDir dir("h5dump");
  Trained t = trained_two_steps();
  const std::string path = dir.file("ck.h5");
  save_checkpoint(path, sample_checkpoint(t));
  const std::string out = dir.file("h5dump.txt");
  const int status = std::system(("h5dump -H '" + path + "' > '" + out + "' 2>&1").c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const std::string text = read_bytes(out);
  CAPTURE(text.substr(0, 2000));
  CHECK(has(text, "ATTRIBUTE \"format_version\""));
  CHECK(has(text, "DATASET \"blocks.0.attn.qkv.weight\""));
  CHECK(has(text, "H5T_IEEE_F32LE"));
}

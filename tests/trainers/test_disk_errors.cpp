// What a user's file system can do to nanoattn's writers, and the checks made before writing:
// writes that fail part way (a file-size limit stands in for a full disk: writes past it fail
// as they do on a full one, in any process, without root; tests/cli/full_disk.sh does the real
// thing on a tmpfs), outputs that would replace an input, output folders that cannot be made,
// and the folder lock.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "checkpoint/checkpoint.h"
#include "dump/kl.h"
#include "dump/prediction_dump.h"
#include "io/h5.h"
#include "nanoattn/error.h"
#include "scratch_dir.h"
#include "util/files.h"
#include "util/folder_lock.h"
#include "error_of.h"

using namespace na;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// While alive, writes past `bytes` into any file fail (EFBIG), as on a disk that is full there.
struct FileSizeLimit {
  rlimit saved{};
  explicit FileSizeLimit(uint64_t bytes) {
    ::signal(SIGXFSZ, SIG_IGN);  // the write fails instead of the process being killed
    getrlimit(RLIMIT_FSIZE, &saved);
    const rlimit l{static_cast<rlim_t>(bytes), saved.rlim_max};
    REQUIRE(setrlimit(RLIMIT_FSIZE, &l) == 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, SIG_DFL);
  }
};

std::vector<std::string> temps_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (is_temp_name(e.path().filename().string())) out.push_back(e.path().string());
  return out;
}

Tensor pattern(const Shape& shape, int salt) {
  Tensor t = Tensor::empty(shape);
  for (int64_t j = 0; j < t.numel(); ++j) t[j] = static_cast<float>(std::sin(0.37 * j + salt));
  return t;
}

Checkpoint checkpoint_with(int salt) {
  Checkpoint ck;
  ck.run_name = "r";
  ck.config_yaml = "d_model: 8\n";
  ck.step = salt;
  ck.tokenizer = "t";
  ck.optimizer = "adamw";
  ck.plugins = {{"softmax", std::string(64, 'a')}};
  ck.params = {{"tok.weight", pattern({300, 32}, salt)}, {"fc.weight", pattern({32, 64}, salt + 1)},
               {"ln.bias", pattern({32}, salt + 2)}};
  ck.optim = {{"tok.weight/m", pattern({300, 32}, salt + 3)}, {"tok.weight/v", pattern({300, 32}, salt + 4)}};
  return ck;
}

DumpInfo dump_info(int64_t V) {
  DumpInfo info;
  info.model = "m";
  info.run_name = "r";
  info.split = "val";
  info.mode = "parallel";
  info.seq_len = 8;
  info.unit = "bpc";
  info.tokenizer = "t";
  for (int64_t v = 0; v < V; ++v) info.vocab.push_back(cat("t", v));
  return info;
}

// n rows of a dump over V tokens whose log-probabilities depend on `salt`.
void write_dump(const std::string& path, int64_t n, int64_t V, int salt) {
  PredictionDumpWriter w(path, dump_info(V), {.chunk_rows = 64});
  std::vector<float> lp(static_cast<size_t>(V));
  for (int64_t r = 0; r < n; ++r) {
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(std::sin(0.1 * r + v + salt));
    for (int64_t v = 0; v < V; ++v) lp[v] = static_cast<float>(std::sin(0.1 * r + v + salt) - std::log(s));
    const int32_t in = static_cast<int32_t>(r % V), tg = static_cast<int32_t>((r + 1) % V),
                  pos = static_cast<int32_t>(r % 8);
    const float nll = -lp[tg];
    w.append({&in, 1}, {&tg, 1}, {&pos, 1}, lp.data(), {&nll, 1});
  }
  w.commit();
}

// Runs `write` (which replaces `path`) under every file-size limit from 0 to past the size of
// the file it writes, in `step` bytes: each run either succeeds, and `check` accepts the file,
// or fails with an error naming `path` and leaves the folder as it was (the previous file byte
// for byte, no temporary file). Returns how many runs failed.
int sweep_limits(const std::string& path, uint64_t full_size, uint64_t step, const std::function<void()>& write,
                 const std::function<void()>& check) {
  const std::string before = testing::read_bytes(path);
  const fs::path dir = fs::path(path).parent_path();
  int failures = 0;
  for (uint64_t limit = 0; limit <= full_size + step; limit += step) {
    CAPTURE(limit);
    std::string error;
    {
      FileSizeLimit fsize(limit);
      error = error_of(write);
    }
    if (error == "(no error)") {
      check();
      testing::write_bytes(path, before);
      continue;
    }
    ++failures;
    CHECK(has(error, path));
    CHECK(testing::read_bytes(path) == before);
    CHECK(temps_in(dir).empty());
  }
  return failures;
}

}  // namespace

TEST_CASE("a checkpoint save cut short by the disk fails cleanly: error, no temp file, previous file intact") {
  testing::ScratchDir dir("disk_ckpt");
  const std::string path = dir / "checkpoint.h5";
  save_checkpoint(path, checkpoint_with(1));
  const Checkpoint next = checkpoint_with(7);
  save_checkpoint(dir / "size_probe.h5", next);
  const uint64_t size = fs::file_size(dir / "size_probe.h5");
  fs::remove(dir / "size_probe.h5");
  const int failures = sweep_limits(
      path, size, 16384, [&] { save_checkpoint(path, next); },
      [&] {  // a save that succeeded holds every value: none was lost in a failed close
        const Checkpoint back = load_checkpoint(path);
        REQUIRE(back.params.size() == next.params.size());
        for (size_t i = 0; i < next.params.size(); ++i)
          CHECK(std::memcmp(back.params[i].second.data(), next.params[i].second.data(),
                            next.params[i].second.numel() * sizeof(float)) == 0);
        CHECK(back.optim.size() == next.optim.size());
      });
  CHECK(failures >= 5);
  CHECK(has(error_of([&] {
              FileSizeLimit fsize(0);
              save_checkpoint(path, next);
            }),
            path + ": checkpoint not saved (any previous file there is untouched)"));
}

TEST_CASE("a prediction dump or KL file cut short by the disk fails cleanly") {
  testing::ScratchDir dir("disk_dump");
  const int64_t N = 700, V = 40;
  const std::string dump = dir / "preds.h5", other = dir / "other.h5", kl = dir / "kl.h5";
  write_dump(dump, N / 2, V, 1);  // the previous file, to be kept on failure
  write_dump(dir / "size_probe.h5", N, V, 2);
  const uint64_t dump_size = fs::file_size(dir / "size_probe.h5");
  fs::remove(dir / "size_probe.h5");
  int failures = sweep_limits(
      dump, dump_size, 8192, [&] { write_dump(dump, N, V, 2); },
      [&] { CHECK(PredictionDump::open(dump).rows() == N); });
  CHECK(failures >= 5);

  write_dump(dump, N, V, 2);
  write_dump(other, N, V, 3);
  KlOptions opt;
  opt.out = kl;
  opt.block_rows = 100;
  compare_dumps(dump, other, opt);
  const uint64_t kl_size = fs::file_size(kl);
  failures = sweep_limits(
      kl, kl_size, 4096, [&] { compare_dumps(dump, other, opt); },
      [&] { CHECK(h5::File::open(kl).attr_int64("/", "tokens") == N); });
  CHECK(failures >= 5);
}

TEST_CASE("an output that is one of the inputs is refused, through links too, before anything is written") {
  testing::ScratchDir dir("same_file");
  const std::string input = dir / "ck.h5", other = dir / "other.h5";
  testing::write_bytes(input, "checkpoint bytes");
  testing::write_bytes(other, "another file");
  const std::string fix = "give --dump another path";
  CHECK(error_of([&] { refuse_overwriting_inputs({input}, {other, input}, fix); }) ==
        input + ": is the same file as the input " + input +
            ": writing it would destroy that input, so nothing was done: give --dump another path");
  fs::create_hard_link(input, dir / "hard.h5");
  fs::create_symlink(input, dir / "soft.h5");
  for (const char* name : {"hard.h5", "soft.h5"})
    CHECK(has(error_of([&] { refuse_overwriting_inputs({dir / name}, {input}, fix); }),
              cat(name, ": is the same file as the input ", input, " (the same device and inode)")));
  CHECK(has(error_of([&] { refuse_overwriting_inputs({input}, {dir / "soft.h5"}, fix); }), "the same file"));
  // Different files, outputs that do not exist yet, empty names: nothing to refuse.
  refuse_overwriting_inputs({other, dir / "new.h5", ""}, {input, dir / "missing.txt", ""}, fix);
  CHECK(testing::read_bytes(input) == "checkpoint bytes");
}

TEST_CASE("an output folder that cannot be made is an error naming it, not a filesystem exception") {
  testing::ScratchDir dir("out_folder");
  testing::write_bytes(dir / "file", "x");
  CHECK(error_of([&] { ensure_folder(dir / "file", "--out"); }) ==
        dir / "file" + ": is a file, not a folder: give --out a folder (or a path where one can be made)");
  CHECK(error_of([&] { ensure_folder(dir / "file/a/b", "--out"); }) ==
        dir / "file/a/b" + ": " + dir / "file" +
            " is a file, not a folder: give --out a folder (or a path where one can be made)");
  ensure_folder(dir / "new/nested", "--out");
  CHECK(fs::is_directory(dir / "new/nested"));
  ensure_folder(dir / "new/nested", "--out");  // an existing folder is fine
}

TEST_CASE("a folder has one writer: its lock names the holder's PID, and goes away with it") {
  testing::ScratchDir dir("lock");
  const std::string folder = dir.path.string(), lock_file = dir / ".lock";
  {
    FolderLock lock(folder, folder, "the run's files");
    CHECK(lock.path() == lock_file);
    CHECK(testing::read_bytes(lock_file) == std::to_string(getpid()) + "\n");
    // flock locks belong to an open file: a second one, even in this process, is refused.
    const std::string pid = std::to_string(getpid());
    CHECK(error_of([&] { FolderLock again(folder, dir / "p.h5", "the dump"); }) ==
          dir / "p.h5" + ": folder " + folder + " is in use by another nanoattn process (pid " + pid +
              "), which holds its lock " + lock_file + ": wait for it to finish, or stop it (kill " + pid +
              "), or write elsewhere; two processes writing the same folder would mix their files");
  }
  CHECK_FALSE(fs::exists(lock_file));  // released and removed
  // A lock file left by a killed process (no flock held): the PID in it is stale, it does not block.
  testing::write_bytes(lock_file, "999999999\n");
  {
    FolderLock lock = FolderLock::for_file(dir / "p.h5", "the dump");
    CHECK(testing::read_bytes(lock_file) == std::to_string(getpid()) + "\n");
  }
  CHECK(error_of([&] { FolderLock::for_file(dir / "missing/p.h5", "the dump"); }) ==
        dir / "missing/p.h5" + ": cannot write the dump: folder " + dir / "missing" +
            " does not exist: create it or choose another path");
  CHECK(FolderLock::file_next_to(dir / "p.h5") == lock_file);
}

TEST_CASE("temporary names: those of temp_path_for, of any process, and nothing else") {
  CHECK(is_temp_name(fs::path(temp_path_for("a/checkpoint.h5")).filename().string()));
  CHECK(is_temp_name(".config.yaml.tmp-12"));
  CHECK_FALSE(is_temp_name("config.yaml.tmp-12"));
  CHECK_FALSE(is_temp_name(".config.yaml.tmp-"));
  CHECK_FALSE(is_temp_name(".config.yaml.tmp-12x"));
  CHECK_FALSE(is_temp_name(".lock"));
}

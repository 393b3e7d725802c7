#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/batcher.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "nanoattn/error.h"

using namespace na;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("nanoattn_test_data_" + tag + "_" + std::to_string(getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
  std::string file(const std::string& name, const std::string& text) const {
    std::ofstream((path / name).string(), std::ios::binary) << text;
    return (path / name).string();
  }
};

// Sets an environment variable for one scope and restores it after.
struct ScopedEnv {
  std::string name, old;
  bool had;
  ScopedEnv(const char* n, const std::string& value) : name(n) {
    const char* o = std::getenv(n);
    had = o != nullptr;
    if (had) old = o;
    setenv(n, value.c_str(), 1);
  }
  ~ScopedEnv() { had ? setenv(name.c_str(), old.c_str(), 1) : unsetenv(name.c_str()); }
};

std::string what_of(const std::function<void()>& f) {
  try { f(); } catch (const Error& e) { return e.what(); }
  return "(no error)";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("tokenizer: char level is sorted bytes, round-trips, and rejects unknown bytes") {
  Tokenizer t = Tokenizer::build_char("hello, world\n");
  REQUIRE(t.size() == 10);  // "\n ,dehlorw"
  for (size_t i = 1; i < t.size(); ++i) CHECK(static_cast<unsigned char>(t.vocab()[i - 1][0]) < static_cast<unsigned char>(t.vocab()[i][0]));
  CHECK(t.vocab()[0] == "\n");
  auto ids = t.encode("hello world");
  CHECK(ids.size() == 11);
  CHECK(t.decode(ids) == "hello world");
  std::string msg = what_of([&] { t.encode("hellz"); });
  CHECK(has(msg, "byte 0x7a ('z') at offset 4 is not in the char vocabulary"));
  CHECK_THROWS_AS(t.decode({99}), Error);

  Tokenizer back = Tokenizer::deserialize(t.serialize());
  CHECK(back.kind() == Tokenizer::Kind::Char);
  CHECK(back.vocab() == t.vocab());
  CHECK(back.encode("hello world") == ids);
}

TEST_CASE("tokenizer: word level counts the train text, keeps newlines, maps unknowns to <unk>") {
  Tokenizer t = Tokenizer::build_word("the cat\nthe dog  the\tcat\n");
  // counts: the 3, \n 2, cat 2, dog 1 -> ties in byte order ("\n" < "cat")
  REQUIRE(t.vocab() == std::vector<std::string>{"<unk>", "the", "\n", "cat", "dog"});
  auto ids = t.encode("the  cat\nthe bird\n");
  CHECK(ids == std::vector<int32_t>{1, 3, 2, 1, Tokenizer::kUnk, 2});
  CHECK(t.decode(ids) == "the cat\nthe <unk>\n");
  CHECK(t.decode(t.encode("the dog\ncat\n")) == "the dog\ncat\n");

  Tokenizer small = Tokenizer::build_word("a a a b b c", 3);
  CHECK(small.vocab() == std::vector<std::string>{"<unk>", "a", "b"});
  CHECK(small.encode("c") == std::vector<int32_t>{0});

  Tokenizer back = Tokenizer::deserialize(t.serialize());
  CHECK(back.kind() == Tokenizer::Kind::Word);
  CHECK(back.vocab() == t.vocab());
  CHECK(back.encode("the  cat\nthe bird\n") == ids);
  CHECK_THROWS_AS(Tokenizer::deserialize("not a tokenizer"), Error);
  CHECK_THROWS_AS(Tokenizer::deserialize("nanoattn-tokenizer 1\nkind char\nsize 2\n61\n"), Error);  // truncated
}

TEST_CASE("corpus: a local file splits into contiguous train / val / test that add up") {
  TempDir dir("split");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + " of the test corpus\n";
  std::string path = dir.file("small.txt", text);

  Corpus c = load_corpus({path, "char", 0.1, 0.05});
  CHECK(c.path == path);
  CHECK(c.train.size() + c.val.size() + c.test.size() == text.size());
  CHECK(c.test.size() == static_cast<size_t>(text.size() * 0.05));
  CHECK(c.val.size() == static_cast<size_t>(text.size() * 0.1));
  std::vector<int32_t> all = c.train;
  all.insert(all.end(), c.val.begin(), c.val.end());
  all.insert(all.end(), c.test.begin(), c.test.end());
  CHECK(c.tokenizer.decode(all) == text);  // contiguous, in order

  Corpus w = load_corpus({path, "word", 0.1, 0.05});
  CHECK(w.tokenizer.kind() == Tokenizer::Kind::Word);
  CHECK(w.train.size() + w.val.size() + w.test.size() == 200 * 7);  // 6 words + "\n" per line
  CHECK(w.tokenizer.decode(w.train).rfind("line 0 of", 0) == 0);
}

TEST_CASE("corpus: bad input names the file") {
  TempDir dir("bad");
  std::string missing = (dir.path / "nope.txt").string();
  std::string msg = what_of([&] { load_corpus({missing}); });
  CHECK(has(msg, missing));
  CHECK(has(msg, "no such corpus file"));

  msg = what_of([&] { load_corpus({"shakespear"}); });
  CHECK(has(msg, "shakespear"));
  CHECK(has(msg, "named corpora: tinyshakespeare, enwik8, text8, kjv"));

  std::string empty = dir.file("empty.txt", "");
  msg = what_of([&] { load_corpus({empty}); });
  CHECK(msg == empty + ": the corpus file is empty (0 bytes); give a file with text in it");

  std::string tiny = dir.file("tiny.txt", "abc");
  msg = what_of([&] { load_corpus({tiny}); });
  CHECK(has(msg, tiny));
  CHECK(has(msg, "train 3, val 0, test 0"));

  CHECK(has(what_of([&] { load_corpus({tiny, "bpe"}); }), "tokenizer must be"));
}

TEST_CASE("corpus: tinyshakespeare is found through NANOATTN_DATA and checksum-verified") {
  TempDir cache("ts_cache");
  ScopedEnv data("NANOATTN_DATA", std::string("/nonexistent/folder:") + NANOATTN_SHARED_DIR "/data");
  ScopedEnv c("NANOATTN_CACHE", cache.path.string());
  Corpus ts = load_corpus({"tinyshakespeare"});
  CHECK(ts.path == std::string(NANOATTN_SHARED_DIR "/data/tinyshakespeare.txt"));
  CHECK(ts.tokenizer.size() == 65);
  size_t n = ts.train.size() + ts.val.size() + ts.test.size();
  CHECK(n == 1115394);
  CHECK(ts.test.size() == static_cast<size_t>(n * 0.05));

  // A damaged copy in a data folder is refused, naming the file.
  TempDir bad("ts_bad");
  std::string damaged = bad.file("tinyshakespeare.txt", "not shakespeare\n");
  ScopedEnv data2("NANOATTN_DATA", bad.path.string());
  std::string msg = what_of([&] { load_corpus({"tinyshakespeare"}); });
  CHECK(has(msg, damaged));
  CHECK(has(msg, "SHA-256"));
}

TEST_CASE("corpus: offline, a failed download says where it looked, the URL and what to do") {
  TempDir cache("off_cache"), data("off_data");
  ScopedEnv d("NANOATTN_DATA", data.path.string());
  ScopedEnv c("NANOATTN_CACHE", cache.path.string());
  std::string msg = what_of([&] { load_corpus({"tinyshakespeare"}); });
  if (msg == "(no error)") {  // a machine with a network: the download worked and was verified
    MESSAGE("tinyshakespeare downloaded; offline message not tested");
    return;
  }
  CHECK(has(msg, "tinyshakespeare"));
  CHECK(has(msg, data.path.string()));
  CHECK(has(msg, cache.path.string()));
  CHECK(has(msg, "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"));
  CHECK(has(msg, "NANOATTN_DATA"));
  for (const auto& e : fs::directory_iterator(cache.path)) FAIL("left behind: " << e.path());  // no partial file
}

TEST_CASE("corpus: kjv is built from the bible command and cached") {
  if (std::system("command -v bible >/dev/null 2>&1") != 0) {
    MESSAGE("bible not installed (tools/setup.sh installs bible-kjv): skipped");
    return;
  }
  TempDir cache("kjv");
  ScopedEnv d("NANOATTN_DATA", "");
  ScopedEnv c("NANOATTN_CACHE", cache.path.string());
  Corpus k = load_corpus({"kjv"});
  CHECK(k.path == (cache.path / "kjv.txt").string());
  size_t n = k.train.size() + k.val.size() + k.test.size();
  CHECK(n > 4000000);
  CHECK(fs::file_size(k.path) == n);
  CHECK(k.tokenizer.decode({k.train.begin(), k.train.begin() + 200}).find("In the beginning God created") != std::string::npos);
  CHECK(resolve_corpus_file("kjv") == k.path);  // second time: from the cache
}

TEST_CASE("batcher: the batches depend only on (seed, cursor); restoring the cursor repeats them") {
  std::vector<int32_t> s(1000);
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<int32_t>(i);
  Batcher a(s, 42);
  Batch b0 = a.next(4, 16), b1 = a.next(4, 16), b2 = a.next(4, 16);
  CHECK(a.cursor() == 3);
  for (int64_t i = 0; i < 4 * 16; ++i) CHECK(b0.targets[i] == b0.inputs[i] + 1);  // shifted by one
  for (int32_t v : b0.inputs) CHECK((v >= 0 && v + 1 < 1000));
  CHECK(b0.inputs != b1.inputs);

  Batcher again(s, 42);
  CHECK(again.next(4, 16).inputs == b0.inputs);
  Batcher resumed(s, 42);
  resumed.set_cursor(2);
  Batch r2 = resumed.next(4, 16);
  CHECK(r2.inputs == b2.inputs);
  CHECK(r2.targets == b2.targets);
  CHECK(Batcher(s, 43).next(4, 16).inputs != b0.inputs);

  std::vector<int32_t> shortstream(8);
  CHECK(has(what_of([&] { Batcher(shortstream, 0).next(1, 8); }), "fewer than T + 1 = 9"));
  CHECK_NOTHROW(Batcher(shortstream, 0).next(1, 7));
}

TEST_CASE("eval windows: every token but the first is predicted exactly once") {
  for (size_t n : {0, 1, 2, 9, 10, 11, 100, 101}) {
    for (int64_t T : {1, 3, 10}) {
      std::vector<int32_t> s(n);
      std::vector<int> seen(n, 0);
      for (const EvalWindow& w : eval_windows(s, T)) {
        CHECK((w.length >= 1 && w.length <= static_cast<size_t>(T)));
        CHECK(w.start + w.length + 1 <= n);
        for (size_t i = 0; i < w.length; ++i) ++seen[w.start + 1 + i];
      }
      for (size_t i = 0; i < n; ++i) CHECK(seen[i] == (i == 0 ? 0 : 1));
    }
  }
}

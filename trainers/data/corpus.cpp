#include "data/corpus.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/sha256.h"
#include "nanoattn/error.h"

namespace na {
namespace fs = std::filesystem;
namespace {

// A corpus nanoattn knows by name. sha256 empty = not yet pinned: the size is checked instead.
struct Named {
  const char* name;
  std::vector<const char*> files;  // file names accepted in a data folder; files[0] is cached
  const char* url;                 // nullptr: built locally (kjv)
  const char* sha256;
  uint64_t size;                   // 0 = unchecked
  const char* zip_member;          // the URL is a zip holding this file
  uint64_t fixed_train, fixed_val; // standard split in bytes (0 = use the fractions)
};

const std::vector<Named>& named() {
  static const std::vector<Named> table = {
      {"tinyshakespeare", {"tinyshakespeare.txt", "input.txt"},
       "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
       "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 0, nullptr, 0, 0},
      // enwik8 / text8: checksums not yet pinned; the exact size is the check for now.
      {"enwik8", {"enwik8"}, "http://mattmahoney.net/dc/enwik8.zip", "", 100000000, "enwik8", 90000000, 5000000},
      {"text8", {"text8"}, "http://mattmahoney.net/dc/text8.zip", "", 100000000, "text8", 90000000, 5000000},
      {"kjv", {"kjv.txt"}, nullptr, "", 0, nullptr, 0, 0},
  };
  return table;
}

const Named* find_named(const std::string& name) {
  for (const auto& n : named())
    if (name == n.name) return &n;
  return nullptr;
}

std::vector<std::string> data_dirs() {
  std::vector<std::string> dirs;
  const char* env = std::getenv("NANOATTN_DATA");
  if (!env) return dirs;
  std::stringstream ss(env);
  for (std::string d; std::getline(ss, d, ':');)
    if (!d.empty()) dirs.push_back(d);
  return dirs;
}

std::string quote(const std::string& s) {  // for /bin/sh
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a shell command, returns (exit status, stdout).
std::pair<int, std::string> run(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::string out;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int status = pclose(p);
  return {status, out};
}

std::string temp_name(const std::string& final_path) { return cat(final_path, ".part-", getpid()); }

std::string searched(const Named& n) {
  std::string files;
  for (size_t i = 0; i < n.files.size(); ++i) files += (i ? " or " : "") + std::string(n.files[i]);
  std::string dirs;
  for (const auto& d : data_dirs()) dirs += (dirs.empty() ? "" : ", ") + d;
  return cat("searched for ", files, " in the NANOATTN_DATA folders (",
             dirs.empty() ? std::string("NANOATTN_DATA is not set or empty") : dirs, ") and the cache ", cache_dir());
}

// Checks a found or downloaded file against the table; throws naming it.
void verify(const Named& n, const std::string& path) {
  if (n.size) {
    uint64_t got = fs::file_size(path);
    NA_CHECK(got == n.size, path, n.name, " must be exactly ", n.size, " bytes, this file has ", got,
             "; replace it with the original file from ", n.url);
  }
  if (*n.sha256) {
    std::string got = sha256_file(path);
    NA_CHECK(got == n.sha256, path, "SHA-256 is ", got, ", expected ", n.sha256, " for ", n.name,
             "; the file is damaged or a different text: replace it with ", n.url);
  }
}

std::string download(const Named& n) {
  std::string dir = cache_dir(), final_path = (fs::path(dir) / n.files[0]).string(), tmp = temp_name(final_path);
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string cmd;
  if (n.zip_member) {
    std::string zip = tmp + ".zip";
    cmd = cat("(curl -fsSL --connect-timeout 30 -o ", quote(zip), " ", quote(n.url), " && unzip -p ", quote(zip), " ",
              n.zip_member, " > ", quote(tmp), "; s=$?; rm -f ", quote(zip), "; exit $s) 2>&1");
  } else {
    cmd = cat("curl -fsSL --connect-timeout 30 -o ", quote(tmp), " ", quote(n.url), " 2>&1");
  }
  auto [status, out] = ec ? std::pair<int, std::string>{-1, ec.message()} : run(cmd);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (status != 0) {
    fs::remove(tmp, ec);
    throw Error(n.name, cat("not found locally and the download failed; ", searched(n), "; downloading ", n.url,
                            " gave: ", out.empty() ? std::string("(no output)") : out,
                            ". To provide it: fetch ", n.url, n.zip_member ? " (unzip it)" : "", " yourself and put ",
                            n.files[0], " in a folder listed in NANOATTN_DATA (colon-separated), or in ", dir));
  }
  try {
    verify(n, tmp);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, final_path);  // appears whole or not at all
  return final_path;
}

// kjv.txt in the cache, from `bible "Gen1:1-Rev22:21"` (Debian's bible-kjv).
std::string build_kjv() {
  std::string dir = cache_dir(), final_path = (fs::path(dir) / "kjv.txt").string(), tmp = temp_name(final_path);
  NA_CHECK(std::system("command -v bible >/dev/null 2>&1") == 0, "kjv",
           "the `bible` command is not installed; install bible-kjv (tools/setup.sh does)");
  auto [status, text] = run("bible \"Gen1:1-Rev22:21\" 2>/dev/null");
  NA_CHECK(status == 0 && !text.empty(), "kjv", "`bible \"Gen1:1-Rev22:21\"` failed (status ", status, ", ",
           text.size(), " bytes); reinstall bible-kjv (tools/setup.sh)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  NA_CHECK(!ec, dir, "cannot create the cache folder: ", ec.message(), "; set NANOATTN_CACHE to a writable folder");
  {
    std::ofstream f(tmp, std::ios::binary);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    NA_CHECK(f.good(), tmp, "cannot write the kjv cache file; set NANOATTN_CACHE to a writable folder");
  }
  fs::rename(tmp, final_path);
  return final_path;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  NA_CHECK(f, path, "cannot open the corpus file; check the path or give a named corpus (", named_corpora(), ")");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A compressed archive or a binary file would train on its bytes without a word: refuse it,
// naming what it looks like, unless data.binary says that is meant.
void refuse_binary(const std::string& path, const std::string& text) {
  struct Magic {
    const char* bytes;
    size_t size;
    const char* what;
  };
  static const Magic magics[] = {{"\x1f\x8b", 2, "a gzip file (gunzip it)"},
                                 {"PK\x03\x04", 4, "a zip archive (unzip it)"},
                                 {"\xfd" "7zXZ\0", 6, "an xz file (unxz it)"},
                                 {"BZh", 3, "a bzip2 file (bunzip2 it)"},
                                 {"\x28\xb5\x2f\xfd", 4, "a zstd file (unzstd it)"}};
  for (const Magic& m : magics)
    NA_CHECK(text.compare(0, m.size, m.bytes, m.size) != 0, path, "the corpus looks like ", m.what,
             ", not text; or set data.binary: true to train on its bytes as they are");
  const size_t nul = text.find('\0');
  NA_CHECK(nul == std::string::npos, path, "the corpus holds a NUL byte at offset ", nul,
           ": a binary file, not text; give a text file, or set data.binary: true to train on its bytes");
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

std::string cache_dir() {
  if (const char* c = std::getenv("NANOATTN_CACHE"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "nanoattn").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : ".") / ".cache" / "nanoattn").string();
}

std::string named_corpora() {
  std::string s;
  for (const auto& n : named()) s += (s.empty() ? "" : ", ") + std::string(n.name);
  return s;
}

bool is_named_corpus(const std::string& name) {
  std::stringstream list(named_corpora());
  for (std::string item; std::getline(list, item, ',');)
    if (item.erase(0, item.find_first_not_of(' ')) == name) return true;
  return false;
}

std::string resolve_corpus_file(const std::string& name_or_path) {
  const Named* n = find_named(name_or_path);
  if (!n) {
    NA_CHECK(fs::is_regular_file(name_or_path), name_or_path,
             "no such corpus file (or not a regular file), and not a named corpus (named corpora: ", named_corpora(), ")");
    return name_or_path;
  }
  std::vector<std::string> dirs = data_dirs();
  dirs.push_back(cache_dir());
  for (const auto& d : dirs)
    for (const char* f : n->files)
      if (fs::path p = fs::path(d) / f; fs::is_regular_file(p)) {
        verify(*n, p.string());
        return p.string();
      }
  return n->url ? download(*n) : build_kjv();
}

Corpus load_corpus(const CorpusSpec& spec) {
  NA_CHECK(spec.tokenizer == "char" || spec.tokenizer == "word", "corpus",
           "tokenizer must be \"char\" or \"word\", got \"", spec.tokenizer, "\"");
  NA_CHECK(spec.val_fraction >= 0 && spec.test_fraction >= 0 && spec.val_fraction + spec.test_fraction < 1, "corpus",
           "val_fraction ", spec.val_fraction, " and test_fraction ", spec.test_fraction,
           " must be >= 0 and sum to less than 1");
  Corpus c;
  c.name = spec.name_or_path;
  c.path = resolve_corpus_file(spec.name_or_path);
  std::string text = read_file(c.path);
  NA_CHECK(!text.empty(), c.path, "the corpus file is empty (0 bytes); give a file with text in it");
  if (!spec.binary && !find_named(spec.name_or_path)) refuse_binary(c.path, text);  // named ones are checksummed

  // Byte cuts: train = [0, cut1), val = [cut1, cut2), test = [cut2, n).
  const size_t n = text.size();
  const Named* nm = find_named(spec.name_or_path);
  size_t cut1, cut2;
  bool want_val = spec.val_fraction > 0, want_test = spec.test_fraction > 0;
  if (nm && nm->fixed_train) {
    cut1 = nm->fixed_train, cut2 = nm->fixed_train + nm->fixed_val, want_val = want_test = true;
  } else {
    size_t n_test = static_cast<size_t>(static_cast<double>(n) * spec.test_fraction);
    size_t n_val = static_cast<size_t>(static_cast<double>(n) * spec.val_fraction);
    cut1 = n - n_test - n_val, cut2 = n - n_test;
  }
  if (spec.tokenizer == "word") {  // never cut inside a word
    while (cut1 < n && !is_space(text[cut1])) ++cut1;
    cut2 = std::max(cut2, cut1);
    while (cut2 < n && !is_space(text[cut2])) ++cut2;
  }
  std::string train_text = text.substr(0, cut1);
  c.tokenizer = spec.tokenizer == "char" ? Tokenizer::build_char(text) : Tokenizer::build_word(train_text, spec.max_vocab);
  c.train = c.tokenizer.encode(train_text);
  c.val = c.tokenizer.encode(text.substr(cut1, cut2 - cut1));
  c.test = c.tokenizer.encode(text.substr(cut2));

  // A split needs at least one (input, target) pair.
  bool ok = c.train.size() >= 2 && (!want_val || c.val.size() >= 2) && (!want_test || c.test.size() >= 2);
  NA_CHECK(ok, c.path, "the corpus (", n, " bytes) splits into train ", c.train.size(), ", val ", c.val.size(),
           ", test ", c.test.size(), " ", spec.tokenizer, " tokens (val_fraction ", spec.val_fraction,
           ", test_fraction ", spec.test_fraction, "); each split needs at least 2 tokens: use a longer corpus or "
           "larger fractions");
  return c;
}

}  // namespace na

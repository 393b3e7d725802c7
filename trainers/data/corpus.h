// Corpora: a local file or a named corpus (tinyshakespeare, enwik8, text8, kjv), tokenized and
// cut into contiguous train / val / test token streams.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace na {

struct CorpusSpec {
  std::string name_or_path;       // a named corpus, or a path to a text file
  std::string tokenizer = "char";  // "char" or "word"
  double val_fraction = 0.05, test_fraction = 0.05;  // ignored by enwik8 / text8 (fixed split)
  size_t max_vocab = 0;           // word level: at most this many tokens incl. <unk>; 0 = all
  bool binary = false;            // train on a file that looks binary (NUL bytes, an archive) anyway
};

struct Corpus {
  std::string name;   // the spec's name_or_path
  std::string path;   // the file actually read
  Tokenizer tokenizer;
  std::vector<int32_t> train, val, test;  // token ids; the corpus bytes in this order
};

// Resolution: a known name is a named corpus (write "./kjv" for a local file called kjv); any
// other string must be an existing file. Named files are looked for in each folder of
// NANOATTN_DATA (colon-separated), then in cache_dir(); tinyshakespeare / enwik8 / text8 are
// then downloaded (curl) into the cache and verified; kjv is built from the `bible` command.
// The split is made on bytes (enwik8 and text8: the standard first 90M / next 5M / last 5M;
// others: the last test_fraction is test, the val_fraction before it val); at word level a cut
// moves forward to the next whitespace so no word is split. Char vocab: the whole corpus; word
// vocab: the train split. Throws na::Error naming the file on a missing, empty or too-short
// corpus.
Corpus load_corpus(const CorpusSpec& spec);

// The path of a named corpus, fetching or building it if needed (no tokenizing).
std::string resolve_corpus_file(const std::string& name_or_path);

// $NANOATTN_CACHE, else $XDG_CACHE_HOME/nanoattn, else ~/.cache/nanoattn (not created here).
std::string cache_dir();

// "tinyshakespeare, enwik8, text8, kjv"
std::string named_corpora();
bool is_named_corpus(const std::string& name);  // one of named_corpora()

}  // namespace na

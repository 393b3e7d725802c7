#include "data/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "nanoattn/error.h"

namespace na {
namespace {

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Calls f(word) for each word, and f("\n") for each newline, in order.
template <class F>
void for_each_word(const std::string& text, F&& f) {
  size_t i = 0, n = text.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') { f(std::string("\n")); ++i; continue; }
    if (is_space(c)) { ++i; continue; }
    size_t j = i;
    while (j < n && !is_space(static_cast<unsigned char>(text[j]))) ++j;
    f(text.substr(i, j - i));
    i = j;
  }
}

std::string hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += d[c >> 4], out += d[c & 15];
  return out;
}

std::string unhex(const std::string& h, size_t line) {
  auto val = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw Error("tokenizer", cat("line ", line, ": '", h, "' is not lower-case hex"));
  };
  NA_CHECK(h.size() % 2 == 0, "tokenizer", "line ", line, ": odd-length hex '", h, "'");
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) out += static_cast<char>(val(h[i]) * 16 + val(h[i + 1]));
  return out;
}

}  // namespace

void Tokenizer::index() {
  std::fill(std::begin(byte_to_id_), std::end(byte_to_id_), -1);
  word_to_id_.clear();
  for (size_t i = 0; i < vocab_.size(); ++i) {
    if (kind_ == Kind::Char) {
      NA_CHECK(vocab_[i].size() == 1, "tokenizer", "char token ", i, " has ", vocab_[i].size(), " bytes, expected 1");
      byte_to_id_[static_cast<unsigned char>(vocab_[i][0])] = static_cast<int32_t>(i);
    } else {
      word_to_id_.emplace(vocab_[i], static_cast<int32_t>(i));
    }
  }
}

Tokenizer Tokenizer::build_char(const std::string& corpus) {
  bool seen[256] = {};
  for (unsigned char c : corpus) seen[c] = true;
  Tokenizer t;
  t.kind_ = Kind::Char;
  for (int b = 0; b < 256; ++b)
    if (seen[b]) t.vocab_.emplace_back(1, static_cast<char>(b));
  t.index();
  return t;
}

Tokenizer Tokenizer::build_word(const std::string& train_text, size_t max_size) {
  std::unordered_map<std::string, uint64_t> counts;
  for_each_word(train_text, [&](const std::string& w) { ++counts[w]; });
  counts.erase("<unk>");  // the reserved name keeps id 0
  std::vector<std::pair<std::string, uint64_t>> words(counts.begin(), counts.end());
  std::sort(words.begin(), words.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;  // deterministic ties
  });
  if (max_size > 0 && words.size() > max_size - 1) words.resize(max_size - 1);
  Tokenizer t;
  t.kind_ = Kind::Word;
  t.vocab_.push_back("<unk>");
  for (auto& [w, n] : words) t.vocab_.push_back(w);
  t.index();
  return t;
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  if (kind_ == Kind::Char) {
    ids.resize(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      int32_t id = byte_to_id_[c];
      if (id < 0) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", c);
        throw Error("tokenizer", cat("byte ", buf, (c >= 32 && c < 127 ? cat(" ('", static_cast<char>(c), "')") : ""),
                                     " at offset ", i, " is not in the char vocabulary (", size(),
                                     " symbols, built from the corpus); encode only text from that corpus"));
      }
      ids[i] = id;
    }
  } else {
    for_each_word(text, [&](const std::string& w) {
      auto it = word_to_id_.find(w);
      ids.push_back(it == word_to_id_.end() ? kUnk : it->second);
    });
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  bool line_start = true;  // word level: no space before the first word of a line
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    NA_CHECK(id >= 0 && static_cast<size_t>(id) < vocab_.size(), "tokenizer",
             "id ", id, " at position ", i, " is outside the vocabulary [0, ", vocab_.size(), ")");
    const std::string& tok = vocab_[id];
    if (kind_ == Kind::Char) { out += tok; continue; }
    if (tok == "\n") { out += '\n'; line_start = true; continue; }
    if (!line_start) out += ' ';
    out += tok;
    line_start = false;
  }
  return out;
}

std::string Tokenizer::serialize() const {
  std::string s = cat("nanoattn-tokenizer 1\nkind ", kind_name(), "\nsize ", vocab_.size(), "\n");
  for (const auto& tok : vocab_) s += hex(tok) + "\n";
  return s;
}

Tokenizer Tokenizer::deserialize(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  NA_CHECK(std::getline(in, line) && line == "nanoattn-tokenizer 1", "tokenizer",
           "the serialized form must start with 'nanoattn-tokenizer 1', got '", line, "'");
  Tokenizer t;
  NA_CHECK(std::getline(in, line) && (line == "kind char" || line == "kind word"), "tokenizer",
           "line 2 must be 'kind char' or 'kind word', got '", line, "'");
  t.kind_ = line == "kind char" ? Kind::Char : Kind::Word;
  NA_CHECK(std::getline(in, line) && line.rfind("size ", 0) == 0, "tokenizer", "line 3 must be 'size <V>', got '", line, "'");
  size_t n = 0;
  try { n = std::stoull(line.substr(5)); } catch (...) { throw Error("tokenizer", cat("line 3: bad size '", line, "'")); }
  for (size_t i = 0; i < n; ++i) {
    NA_CHECK(std::getline(in, line), "tokenizer", "expected ", n, " tokens, found only ", i);
    t.vocab_.push_back(unhex(line, i + 4));
  }
  NA_CHECK(t.kind_ == Kind::Char || (!t.vocab_.empty() && t.vocab_[0] == "<unk>"), "tokenizer",
           "a word vocabulary must start with <unk>");
  t.index();
  return t;
}

}  // namespace na

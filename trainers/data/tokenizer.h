// Char-level and word-level tokenizers: text <-> token ids, with a vocabulary that can be
// written into checkpoints (serialize) and HDF5 dumps (vocab).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace na {

class Tokenizer {
 public:
  enum class Kind { Char, Word };

  // Char: one token per byte; vocab = the sorted distinct bytes of `corpus` (the whole corpus,
  // so val/test never hold an unknown byte).
  static Tokenizer build_char(const std::string& corpus);
  // Word: tokens are the whitespace-separated words of `train_text`, most frequent first (ties
  // in byte order), keeping at most max_size entries including "<unk>" (0 = no limit).
  // Newlines: each '\n' is a token of its own ("\n"), so line structure survives a round trip;
  // every other whitespace run (spaces, tabs, '\r') only separates words and decodes as one
  // space. Id 0 is always "<unk>".
  static Tokenizer build_word(const std::string& train_text, size_t max_size = 0);

  // Char: throws na::Error naming the byte and its offset if it is not in the vocabulary.
  // Word: unknown words become <unk>.
  std::vector<int32_t> encode(const std::string& text) const;
  // Char: concatenates bytes. Word: words joined by single spaces, "\n" tokens as newlines.
  // Throws on an id outside [0, size()).
  std::string decode(const std::vector<int32_t>& ids) const;

  Kind kind() const { return kind_; }
  const char* kind_name() const { return kind_ == Kind::Char ? "char" : "word"; }
  const std::vector<std::string>& vocab() const { return vocab_; }  // id -> token bytes
  size_t size() const { return vocab_.size(); }
  static constexpr int32_t kUnk = 0;  // word level only

  // Text form for checkpoints:
  //   "nanoattn-tokenizer 1\n" "kind <char|word>\n" "size <V>\n" then V lines, each the token's
  //   bytes in lower-case hex (any byte, including '\n', survives).
  std::string serialize() const;
  // Throws na::Error("tokenizer", ...) on a malformed string.
  static Tokenizer deserialize(const std::string& text);

 private:
  void index();  // rebuilds the lookup tables from vocab_
  Kind kind_ = Kind::Char;
  std::vector<std::string> vocab_;
  int32_t byte_to_id_[256];                        // char level; -1 = not in vocab
  std::unordered_map<std::string, int32_t> word_to_id_;  // word level
};

}  // namespace na

// An event-file reader independent of the writer (tests only): TFRecord framing with both CRCs
// checked, protobuf decoded by hand, and a TensorBoard-like view of a folder that applies
// TensorBoard's purging (a SessionLog START drops every point at steps >= its step; a point whose
// step goes back drops its tag's points at steps >= it).
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/tensorboard.h"
#include "scratch_dir.h"

namespace na::testing::events {

inline uint64_t le(const std::string& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}

// Splits a TFRecord file into its records' data, checking the length and both masked CRCs of
// every record. Returns false (with the reason) at the first inconsistency.
inline bool read_records(const std::string& file, std::vector<std::string>& out, std::string& why) {
  size_t at = 0;
  while (at < file.size()) {
    if (file.size() - at < 12) return why = "truncated header at " + std::to_string(at), false;
    const uint64_t n = le(file, at, 8);
    if (le(file, at + 8, 4) != masked_crc32c(file.data() + at, 8))
      return why = "length CRC at " + std::to_string(at), false;
    if (file.size() - at - 12 < n + 4) return why = "truncated data at " + std::to_string(at), false;
    const std::string data = file.substr(at + 12, n);
    if (le(file, at + 12 + n, 4) != masked_crc32c(data.data(), data.size()))
      return why = "data CRC at " + std::to_string(at), false;
    out.push_back(data);
    at += 12 + n + 4;
  }
  return true;
}

// A protobuf message as field number -> values (varints and fixed values as integers,
// length-delimited fields as bytes). Throws on malformed input.
struct Field {
  int wire;
  uint64_t num = 0;
  std::string bytes;
};
inline std::multimap<uint32_t, Field> decode(const std::string& m) {
  std::multimap<uint32_t, Field> fields;
  size_t at = 0;
  auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (at >= m.size() || shift > 63) throw std::runtime_error("bad varint");
      const auto b = static_cast<unsigned char>(m[at++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (at < m.size()) {
    const uint64_t key = varint();
    Field f{static_cast<int>(key & 7), 0, {}};
    if (f.wire == 0) {
      f.num = varint();
    } else if (f.wire == 1 || f.wire == 5) {
      const int n = f.wire == 1 ? 8 : 4;
      if (m.size() - at < size_t(n)) throw std::runtime_error("truncated fixed field");
      f.num = le(m, at, n), at += n;
    } else if (f.wire == 2) {
      const uint64_t n = varint();
      if (m.size() - at < n) throw std::runtime_error("truncated bytes field");
      f.bytes = m.substr(at, n), at += n;
    } else {
      throw std::runtime_error("unexpected wire type " + std::to_string(f.wire));
    }
    fields.emplace(static_cast<uint32_t>(key >> 3), f);
  }
  return fields;
}

inline const Field& only(const std::multimap<uint32_t, Field>& m, uint32_t field, int wire) {
  REQUIRE(m.count(field) == 1);
  const Field& f = m.find(field)->second;
  REQUIRE(f.wire == wire);
  return f;
}

struct Scalar {
  double wall_time;
  int64_t step;
  std::string tag;
  float value;
};
// Event{wall_time=1, step=2, summary=5: Summary{value=1: Value{tag=1, simple_value=2}}}.
inline Scalar decode_scalar(const std::string& event) {
  const auto e = decode(event);
  Scalar s;
  s.wall_time = std::bit_cast<double>(only(e, 1, 1).num);
  s.step = e.count(2) ? static_cast<int64_t>(only(e, 2, 0).num) : 0;  // proto3: absent = 0
  const auto summary = decode(only(e, 5, 2).bytes);
  const auto value = decode(only(summary, 1, 2).bytes);
  s.tag = only(value, 1, 2).bytes;
  s.value = std::bit_cast<float>(static_cast<uint32_t>(only(value, 2, 5).num));
  return s;
}

// Every record of one event file (REQUIREs valid framing).
inline std::vector<std::string> records_of(const std::string& path) {
  std::vector<std::string> records;
  std::string why;
  REQUIRE_MESSAGE(read_records(read_bytes(path), records, why), path << ": " << why);
  return records;
}

// What TensorBoard shows for a folder: per tag, its (step, value) points in the order kept.
struct View {
  std::map<std::string, std::vector<std::pair<int64_t, float>>> scalars;
  std::map<std::string, std::string> texts;  // tag -> the latest text
  int session_starts = 0;
};

inline View tensorboard_view(const std::filesystem::path& dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());  // TensorBoard reads a folder's files in name order
  View v;
  int64_t most_recent = -1;
  auto purge = [&](int64_t from, const std::string* tag) {
    for (auto& [t, points] : v.scalars)
      if (!tag || t == *tag)
        std::erase_if(points, [&](const auto& p) { return p.first >= from; });
  };
  for (const std::string& f : files) {
    for (const std::string& r : records_of(f)) {
      const auto e = decode(r);
      const int64_t step = e.count(2) ? static_cast<int64_t>(only(e, 2, 0).num) : 0;
      if (e.count(6)) {  // session_log
        const auto log = decode(only(e, 6, 2).bytes);
        if (log.count(1) && only(log, 1, 0).num == 1) purge(step, nullptr), ++v.session_starts;
        continue;
      }
      if (!e.count(5)) continue;
      const auto value = decode(only(decode(only(e, 5, 2).bytes), 1, 2).bytes);
      const std::string tag = only(value, 1, 2).bytes;
      if (step < most_recent) purge(step, &tag);
      most_recent = step;
      if (value.count(2)) {
        v.scalars[tag].emplace_back(step, std::bit_cast<float>(static_cast<uint32_t>(only(value, 2, 5).num)));
      } else {
        const auto tensor = decode(only(value, 8, 2).bytes);
        CHECK(only(tensor, 1, 0).num == 7);  // DT_STRING
        const auto meta = decode(only(value, 9, 2).bytes);
        CHECK(only(decode(only(meta, 1, 2).bytes), 1, 2).bytes == "text");
        v.texts[tag] = only(tensor, 8, 2).bytes;
      }
    }
  }
  return v;
}

}  // namespace na::testing::events

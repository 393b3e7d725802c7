// TFRecord framing: uint64 length (LE), uint32 masked CRC-32C of those 8 bytes, the data,
// uint32 masked CRC-32C of the data. Protobuf wire format: a field is a varint key
// (number << 3 | wire type) then its value: 0 varint, 1 fixed64, 2 length + bytes, 5 fixed32.
#include "metrics/tensorboard.h"

#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>

#include "nanoattn/error.h"

namespace na {

namespace {

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

// Little-endian regardless of the host, as TFRecord and protobuf fixed fields require.
void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void put_key(std::string& out, uint32_t field, Wire wire) { put_varint(out, field << 3 | wire); }

void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kBytes);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event fields 1 (wall_time) and 2 (step), common to every event we write. Like protobuf's own
// serializer (proto3), a step of 0 is left out: readers take the default.
std::string event_header(double wall_time, int64_t step) {
  std::string e;
  put_key(e, 1, kFixed64);
  put_le(e, std::bit_cast<uint64_t>(wall_time), 8);
  if (step != 0) {
    put_key(e, 2, kVarint);
    put_varint(e, static_cast<uint64_t>(step));  // int64: negatives as 10-byte two's complement
  }
  return e;
}

// A double beyond float's range becomes +-inf explicitly (the plain cast would be undefined).
float to_float(double v) {
  constexpr double kMax = std::numeric_limits<float>::max();
  if (v > kMax) return std::numeric_limits<float>::infinity();
  if (v < -kMax) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(v);
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::string& dir) : file_(nullptr, &std::fclose) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  NA_CHECK(!ec, dir, "cannot create the TensorBoard folder: ", ec.message());
  const std::string base = (std::filesystem::path(dir) /
                            ("events.out.tfevents." +
                             std::to_string(static_cast<int64_t>(now_seconds())) + "." + hostname()))
                               .string();
  // "x": never reuse an existing file, which may hold another run's events.
  for (int k = 0; k < 1000 && !file_; ++k) {
    path_ = k == 0 ? base : base + "." + std::to_string(k);
    file_.reset(std::fopen(path_.c_str(), "wbx"));
    NA_CHECK(file_ || errno == EEXIST, path_, "cannot create the event file: ", std::strerror(errno));
  }
  NA_CHECK(file_, base, "cannot create the event file: 1000 files of that name exist");
  std::string e = event_header(now_seconds(), 0);
  put_bytes(e, 3, "brain.Event:2");  // file_version
  write_record(e);
  flush();
}

EventWriter::~EventWriter() = default;

void EventWriter::scalar(const std::string& tag, int64_t step, double value, double wall_time) {
  std::string v;  // Summary.Value
  put_bytes(v, 1, tag);
  put_key(v, 2, kFixed32);
  put_le(v, std::bit_cast<uint32_t>(to_float(value)), 4);
  std::string summary;
  put_bytes(summary, 1, v);  // Summary.value (repeated; one per event here)
  std::string e = event_header(wall_time, step);
  put_bytes(e, 5, summary);  // Event.summary
  write_record(e);
}

void EventWriter::session_start(int64_t step, double wall_time) {
  std::string log;  // SessionLog
  put_key(log, 1, kVarint);
  put_varint(log, 1);  // status: START
  std::string e = event_header(wall_time, step);
  put_bytes(e, 6, log);  // Event.session_log
  write_record(e);
}

void EventWriter::text(const std::string& tag, int64_t step, const std::string& markdown, double wall_time) {
  std::string plugin_data, metadata, shape, tensor, v, summary;
  put_bytes(plugin_data, 1, "text");  // PluginData.plugin_name
  put_bytes(metadata, 1, plugin_data);
  put_key(tensor, 1, kVarint);
  put_varint(tensor, 7);               // TensorProto.dtype: DT_STRING
  put_bytes(tensor, 2, shape);         // tensor_shape: no dims, a scalar
  put_bytes(tensor, 8, markdown);      // string_val
  put_bytes(v, 1, tag);
  put_bytes(v, 8, tensor);             // Summary.Value.tensor
  put_bytes(v, 9, metadata);           // Summary.Value.metadata
  put_bytes(summary, 1, v);
  std::string e = event_header(wall_time, step);
  put_bytes(e, 5, summary);
  write_record(e);
}

void EventWriter::flush() {
  NA_CHECK(std::fflush(file_.get()) == 0, path_, "cannot write the event file: ", std::strerror(errno));
}

void EventWriter::write_record(const std::string& data) {
  std::string r;
  put_le(r, data.size(), 8);
  put_le(r, masked_crc32c(r.data(), 8), 4);
  r += data;
  put_le(r, masked_crc32c(data.data(), data.size()), 4);
  NA_CHECK(std::fwrite(r.data(), 1, r.size(), file_.get()) == r.size(), path_,
           "cannot write the event file: ", std::strerror(errno));
}

}  // namespace na

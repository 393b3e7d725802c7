// TensorBoard event files written without TensorFlow: TFRecord framing around hand-encoded
// protobuf `Event` messages (tensorboard/compat/proto/event.proto, summary.proto).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace na {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF).
uint32_t crc32c(const void* data, size_t n);
// The TFRecord form: ((crc >> 15) | (crc << 17)) + 0xa282ead8, so a CRC of bytes that contain
// CRCs still looks random.
uint32_t masked_crc32c(const void* data, size_t n);

// One event file per writer: <dir>/events.out.tfevents.<unix seconds>.<hostname>, with ".1",
// ".2"... appended if that name exists (a restart within the same second). TensorBoard reads
// a folder's files in name order, so a resumed run's file (which starts with session_start)
// comes after the killed run's.
class EventWriter {
 public:
  // Creates `dir` if needed and writes the first record, Event{wall_time, file_version:
  // "brain.Event:2"}. Throws na::Error naming the file if it cannot be created.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Event{wall_time, step, summary: Summary{value: [Value{tag, simple_value: float(value)}]}}.
  // wall_time is seconds since the Unix epoch. Buffered until flush().
  void scalar(const std::string& tag, int64_t step, double value, double wall_time);
  // Event{wall_time, step, session_log (6): SessionLog{status (1): START (1)}}: a restart at
  // `step`. TensorBoard then drops every point it holds at steps >= step (all tags), so the
  // points a killed run logged after its checkpoint do not show twice.
  void session_start(int64_t step, double wall_time);
  // A text summary (TensorBoard's Text tab): Summary.Value{tag, metadata (9): {plugin_data (1):
  // {plugin_name (1): "text"}}, tensor (8): TensorProto{dtype (1): DT_STRING (7), tensor_shape
  // (2): {} (a scalar), string_val (8): text}}. The text is rendered as Markdown.
  void text(const std::string& tag, int64_t step, const std::string& markdown, double wall_time);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);

  std::string path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
};

}  // namespace na

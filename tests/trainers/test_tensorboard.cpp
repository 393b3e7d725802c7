#include <doctest/doctest.h>

#include <unistd.h>

#include <bit>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/tensorboard.h"
#include "nanoattn/error.h"
#include "scratch_dir.h"
#include "trainers/event_reader.h"

using namespace na;
using na::testing::read_bytes;
using na::testing::ScratchDir;
namespace fs = std::filesystem;
using namespace na::testing::events;

namespace {

double now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

TEST_CASE("crc32c: the check value and the RFC 3720 (iSCSI) vectors") {
  CHECK(crc32c("", 0) == 0u);
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  unsigned char b[48] = {};
  CHECK(crc32c(b, 32) == 0x8A9136AAu);
  std::memset(b, 0xff, 32);
  CHECK(crc32c(b, 32) == 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<unsigned char>(i);
  CHECK(crc32c(b, 32) == 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<unsigned char>(31 - i);
  CHECK(crc32c(b, 32) == 0x113FDB5Cu);
  const unsigned char read_pdu[48] = {0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                      0x14, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0x14, 0, 0, 0, 0x18,
                                      0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0};
  CHECK(crc32c(read_pdu, 48) == 0xD9963A56u);
}

TEST_CASE("masked_crc32c: TFRecord's mask") {
  // ((0xE3069283 >> 15) | (0xE3069283 << 17)) + 0xa282ead8, worked out by hand.
  CHECK(masked_crc32c("123456789", 9) == 0xC78AB0E5u);
  // Every TensorFlow event file starts with the header of a 24-byte record: 18 00 .. 00, then
  // the masked CRC bytes a3 7f 4b 22.
  const char len24[8] = {24, 0, 0, 0, 0, 0, 0, 0};
  CHECK(masked_crc32c(len24, 8) == 0x224B7FA3u);
}

TEST_CASE("EventWriter: a file of valid records: the version event, then one event per scalar") {
  ScratchDir dir("tb_records");
  const double before = now();
  std::string path;
  {
    EventWriter w(dir / "tb");  // a folder that does not exist yet
    path = w.path();
    w.scalar("loss", 0, 4.25, 1000.5);
    w.scalar("train/lr", 300, 0.001, 1001.25);  // 300: a two-byte varint
    w.scalar("bpc", 7, -1e300, 1002.0);          // beyond float: -inf, not undefined behaviour
    w.flush();
  }
  const double after = now();

  char host[256] = {};
  REQUIRE(gethostname(host, sizeof host - 1) == 0);
  const std::string name = fs::path(path).filename().string();
  CHECK(fs::path(path).parent_path() == fs::path(dir / "tb"));
  // events.out.tfevents.<10 digits>.<host>
  const std::string prefix = "events.out.tfevents.";
  REQUIRE(name.size() == prefix.size() + 11 + std::strlen(host));
  CHECK(name.substr(0, prefix.size()) == prefix);
  CHECK(name.substr(prefix.size(), 10).find_first_not_of("0123456789") == std::string::npos);
  CHECK(name[prefix.size() + 10] == '.');
  CHECK(name.substr(prefix.size() + 11) == host);

  const std::string file = read_bytes(path);
  // The version event is 24 bytes (wall_time 9 + file_version 15), like TensorFlow's.
  CHECK(file.substr(0, 12) == std::string("\x18\0\0\0\0\0\0\0\xa3\x7f\x4b\x22", 12));
  std::vector<std::string> records;
  std::string why;
  REQUIRE_MESSAGE(read_records(file, records, why), why);
  REQUIRE(records.size() == 4);

  const auto version = decode(records[0]);
  CHECK(only(version, 3, 2).bytes == "brain.Event:2");
  const double t0 = std::bit_cast<double>(only(version, 1, 1).num);
  CHECK(t0 >= before - 1);
  CHECK(t0 <= after + 1);
  CHECK(version.count(2) == 0);  // step 0, left out

  const Scalar a = decode_scalar(records[1]), b = decode_scalar(records[2]), c = decode_scalar(records[3]);
  CHECK(a.wall_time == 1000.5);
  CHECK(a.step == 0);
  CHECK(a.tag == "loss");
  CHECK(a.value == 4.25f);
  CHECK(b.wall_time == 1001.25);
  CHECK(b.step == 300);
  CHECK(b.tag == "train/lr");
  CHECK(b.value == 0.001f);
  CHECK(c.step == 7);
  CHECK(c.tag == "bpc");
  CHECK(c.value == -std::numeric_limits<float>::infinity());

  // The checker catches a flipped bit in a header and in the data.
  for (size_t at : {size_t(3), size_t(9), size_t(20), file.size() - 2}) {
    std::string bad = file;
    bad[at] ^= 0x10;
    std::vector<std::string> ignored;
    CHECK_FALSE(read_records(bad, ignored, why));
  }
}

TEST_CASE("EventWriter: two writers in one folder (a quick restart) never share a file") {
  ScratchDir dir("tb_two");
  EventWriter a(dir.path.string()), b(dir.path.string());
  CHECK(a.path() != b.path());
  CHECK(fs::file_size(a.path()) == 40);
  CHECK(fs::file_size(b.path()) == 40);
  // Same second: b's name is a's plus a suffix, so TensorBoard (name order) reads b after a.
  if (a.path().size() < b.path().size()) CHECK(b.path() == a.path() + ".1");
}

TEST_CASE("EventWriter: a folder that cannot be created is an error naming it") {
  ScratchDir dir("tb_error");
  na::testing::write_bytes(dir / "file", "x");
  CHECK_THROWS_AS(EventWriter(dir / "file/tb"), Error);
}

TEST_CASE("EventWriter: TensorBoard's own EventFileLoader reads the file (when installed)") {
  if (std::system("/usr/bin/python3 -c 'import tensorboard' >/dev/null 2>&1") != 0) {
    MESSAGE("skipped: /usr/bin/python3 cannot import tensorboard");
    return;
  }
  ScratchDir dir("tb_python");
  std::string path;
  {
    EventWriter w(dir.path.string());
    path = w.path();
    w.scalar("loss", 7, 2.5, 1000.0);
    w.scalar("lr", 300, 0.25, 1001.0);
  }
  const std::string script = dir / "read.py", out = dir / "out.txt";
  na::testing::write_bytes(script,
                           "import sys\n"
                           "from tensorboard.backend.event_processing.event_file_loader import EventFileLoader\n"
                           "for e in EventFileLoader(sys.argv[1]).Load():\n"
                           "    if e.HasField('file_version'): print('version', e.file_version)\n"
                           "    for v in e.summary.value: print(e.step, v.tag, v.simple_value, e.wall_time)\n");
  REQUIRE(std::system(("/usr/bin/python3 " + script + " " + path + " > " + out).c_str()) == 0);
  CHECK(read_bytes(out) == "version brain.Event:2\n7 loss 2.5 1000.0\n300 lr 0.25 1001.0\n");
}

TEST_CASE("EventWriter: a SessionLog START and a text summary, read back field by field") {
  ScratchDir dir("tb_session");
  std::string path;
  {
    EventWriter w(dir.path.string());
    path = w.path();
    w.scalar("train/loss", 5, 2.0, 1000.0);
    w.session_start(3, 1001.0);
    w.text("config", 0, "    lr: 0.004", 1002.0);
    w.scalar("train/loss", 4, 1.5, 1003.0);
    w.flush();
  }
  const std::vector<std::string> r = records_of(path);
  REQUIRE(r.size() == 5);
  const auto start = decode(r[2]);
  CHECK(only(start, 2, 0).num == 3);
  CHECK(only(decode(only(start, 6, 2).bytes), 1, 0).num == 1);  // SessionLog.status = START
  const View v = tensorboard_view(dir.path);
  CHECK(v.session_starts == 1);
  // The START at step 3 dropped the point at step 5; step 4 came after it.
  REQUIRE(v.scalars.at("train/loss").size() == 1);
  CHECK(v.scalars.at("train/loss")[0] == std::pair<int64_t, float>(4, 1.5f));
  CHECK(v.texts.at("config") == "    lr: 0.004");
}

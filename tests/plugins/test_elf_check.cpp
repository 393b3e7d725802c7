// A plugin folder cannot crash the host: a truncated or foreign .so is refused before dlopen
// (which would die of SIGBUS mapping a segment past the end of the file), with the reason, and
// the good plugins still load. The broken files are copies of a real bundled plugin, cut short
// or patched.
#include <doctest/doctest.h>
#include <elf.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "elf_check.h"
#include "plugin_loader.h"

using namespace na;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

std::string write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path.string();
}

// An empty folder of its own under the test build tree.
fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::path(NANOATTN_TEST_BINARY_DIR) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The reason `path` was rejected for, or "(not rejected)".
std::string reason_for(const PluginRegistry& reg, const std::string& path) {
  for (const RejectedPlugin& r : reg.rejected())
    if (r.path == path) return r.reason;
  return "(not rejected)";
}

// A real bundled plugin's bytes and its headers, read here independently of elf_check.cpp.
struct RealPlugin {
  std::string bytes;
  Elf64_Ehdr header{};
  std::vector<Elf64_Phdr> segments;

  RealPlugin() {
    PluginRegistry bundled;
    bytes = read_bytes(bundled.get("local").path);
    REQUIRE(bytes.size() > sizeof header);
    std::memcpy(&header, bytes.data(), sizeof header);
    segments.resize(header.e_phnum);
    for (size_t i = 0; i < segments.size(); ++i)
      std::memcpy(&segments[i], bytes.data() + header.e_phoff + i * sizeof(Elf64_Phdr), sizeof(Elf64_Phdr));
  }

  // The message for the file cut to `n` bytes, from the first header that points past the end.
  std::string expected_cut(size_t n) const {
    const auto tail = cat(" but the file has ", n, " bytes; rebuild the plugin");
    if (n < SELFMAG) return "not a shared library: it does not start with the ELF magic bytes";
    if (n < sizeof header) return cat("truncated: the ELF header needs 64 bytes", tail);
    const size_t ph_end = header.e_phoff + segments.size() * sizeof(Elf64_Phdr);
    if (n < ph_end) return cat("truncated: the program header table ends at byte ", ph_end, tail);
    for (size_t i = 0; i < segments.size(); ++i)
      if (segments[i].p_offset + segments[i].p_filesz > n)
        return cat("truncated: segment ", i, " ends at byte ", segments[i].p_offset + segments[i].p_filesz, tail);
    return cat("truncated: the section header table ends at byte ",
               header.e_shoff + header.e_shnum * sizeof(Elf64_Shdr), tail);
  }

  // A byte in the middle of the largest segment's bytes in the file.
  size_t mid_segment() const {
    const Elf64_Phdr* big = &segments[0];
    for (const Elf64_Phdr& p : segments)
      if (p.p_filesz > big->p_filesz) big = &p;
    return big->p_offset + big->p_filesz / 2;
  }

  std::string patched(size_t offset, const void* value, size_t n) const {
    std::string b = bytes;
    std::memcpy(b.data() + offset, value, n);
    return b;
  }
};

}  // namespace

TEST_CASE("elf check: a truncated plugin is refused before dlopen, naming what is cut") {
  const RealPlugin real;
  const fs::path dir = fresh_dir("elf_truncated");
  // Empty, inside the magic, inside the ELF header, inside the program header table, in the
  // middle of a segment, and one byte short (only the section header table is cut).
  const std::vector<size_t> sizes = {0,  2,  40, size_t(real.header.e_phoff) + 20, real.mid_segment(),
                                     real.bytes.size() / 3, real.bytes.size() - 1};
  std::vector<std::string> files;
  for (size_t n : sizes) files.push_back(write_bytes(dir / cat("cut_", n, ".so"), real.bytes.substr(0, n)));
  write_bytes(dir / "whole.so", real.bytes);  // the uncut copy is fine: only its name, "local", is taken

  PluginRegistry reg({dir.string()});
  for (size_t i = 0; i < sizes.size(); ++i) {
    CAPTURE(sizes[i]);
    const std::string why = reason_for(reg, files[i]);
    CHECK(why.find(real.expected_cut(sizes[i])) != std::string::npos);
    CHECK(elf_problem(files[i]) == why);
  }
  CHECK(real.expected_cut(real.mid_segment()).find("truncated: segment ") == 0);
  CHECK(reason_for(reg, (dir / "whole.so").string()) == "(not rejected)");
  CHECK(reg.has("softmax"));
  CHECK(reg.has("local"));
  CHECK(reg.get("local").path == (dir / "whole.so").string());  // first on the search path
}

TEST_CASE("elf check: a file that is not ELF, or ELF for another machine, word size or byte order") {
  const RealPlugin real;
  const fs::path dir = fresh_dir("elf_foreign");
  const std::string text = write_bytes(dir / "x.so", "this is not a library\n");

  // e_machine patched to another machine than the one the plugin was built for (this one).
  const uint16_t other = real.header.e_machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64;
  const std::string machine = write_bytes(dir / "other_machine.so", real.patched(offsetof(Elf64_Ehdr, e_machine), &other, 2));

  // A genuine 32-bit i386 shared-library header.
  Elf32_Ehdr h32{};
  std::memcpy(h32.e_ident, ELFMAG, SELFMAG);
  h32.e_ident[EI_CLASS] = ELFCLASS32;
  h32.e_ident[EI_DATA] = ELFDATA2LSB;
  h32.e_ident[EI_VERSION] = EV_CURRENT;
  h32.e_type = ET_DYN;
  h32.e_machine = EM_386;
  h32.e_ehsize = sizeof h32;
  const std::string bits32 = write_bytes(dir / "bits32.so", std::string(reinterpret_cast<const char*>(&h32), sizeof h32));

  const bool little = real.header.e_ident[EI_DATA] == ELFDATA2LSB;
  const unsigned char swapped = little ? ELFDATA2MSB : ELFDATA2LSB;
  const std::string endian = write_bytes(dir / "other_endian.so", real.patched(EI_DATA, &swapped, 1));
  const uint16_t exec = ET_EXEC;
  const std::string executable = write_bytes(dir / "executable.so", real.patched(offsetof(Elf64_Ehdr, e_type), &exec, 2));

  PluginRegistry bundled;
  PluginRegistry reg({dir.string()});
  CHECK(reason_for(reg, text).find("not a shared library: it does not start with the ELF magic bytes (the file has 22 "
                                   "bytes); remove it from the plugin folder") == 0);
  CHECK(reason_for(reg, machine).find(cat("built for ", elf_machine_name(other), " (ELF machine ", other,
                                          "), but this nanoattn runs on ", elf_machine_name(real.header.e_machine))) == 0);
  CHECK(reason_for(reg, machine).find("rebuild the plugin") != std::string::npos);
  CHECK(reason_for(reg, bits32).find("a 32-bit ELF file, but nanoattn is a 64-bit program: rebuild the plugin") == 0);
  CHECK(reason_for(reg, endian).find(cat("an ELF file of another byte order (", little ? "big" : "little",
                                         "-endian) than this machine's")) == 0);
  CHECK(reason_for(reg, executable).find("an ELF executable, not a shared library") == 0);
  CHECK(reg.rejected().size() == bundled.rejected().size() + 5);
  CHECK(reg.plugins().size() == bundled.plugins().size());  // every good plugin still loads
  CHECK(reg.has("softmax"));
  CHECK(elf_problem(reg.get("softmax").path).empty());
  CHECK(elf_problem((dir / "absent.so").string()) == "cannot be read: no such file");
  CHECK(elf_problem(dir.string()) == "cannot be read: not a regular file");
}

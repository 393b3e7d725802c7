#include "elf_check.h"

#include <elf.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "nanoattn/error.h"

namespace na {

namespace {

// The machine this nanoattn was compiled for: a plugin must match it (0: not known here, not
// checked).
constexpr unsigned kHostMachine =
#if defined(__x86_64__)
    EM_X86_64;
#elif defined(__aarch64__)
    EM_AARCH64;
#elif defined(__riscv) && __riscv_xlen == 64
    EM_RISCV;
#elif defined(__powerpc64__)
    EM_PPC64;
#elif defined(__s390x__)
    EM_S390;
#else
    0;
#endif

static_assert(sizeof(void*) == 8, "plugins are checked as 64-bit ELF files");
constexpr unsigned char kHostData = std::endian::native == std::endian::little ? ELFDATA2LSB : ELFDATA2MSB;

const char* const kRebuild = "; rebuild the plugin";

// [offset, offset + length) lies inside a file of `size` bytes (without overflowing).
bool inside(uint64_t offset, uint64_t length, uint64_t size) { return offset <= size && length <= size - offset; }

// Reads `n` bytes at `offset`; the caller has checked that they are inside the file.
bool read_at(std::ifstream& f, uint64_t offset, void* out, size_t n) {
  f.seekg(static_cast<std::streamoff>(offset));
  f.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
  return static_cast<size_t>(f.gcount()) == n;
}

// e_ident: magic, 64-bit, byte order. `n` bytes of it could be read.
std::string ident_problem(const unsigned char* ident, size_t n, uint64_t size) {
  if (n < SELFMAG || std::memcmp(ident, ELFMAG, SELFMAG) != 0)
    return cat("not a shared library: it does not start with the ELF magic bytes (the file has ", size,
               " bytes); remove it from the plugin folder or rebuild the plugin");
  if (n < EI_NIDENT) return cat("truncated: the ELF header needs ", sizeof(Elf64_Ehdr), " bytes but the file has ",
                                size, " bytes", kRebuild);
  if (ident[EI_CLASS] != ELFCLASS64)
    return cat("a ", ident[EI_CLASS] == ELFCLASS32 ? "32-bit" : "non-64-bit",
               " ELF file, but nanoattn is a 64-bit program: rebuild the plugin as a 64-bit ",
               elf_machine_name(kHostMachine), " library");
  if (ident[EI_DATA] != kHostData)
    return cat("an ELF file of another byte order (",
               ident[EI_DATA] == ELFDATA2MSB   ? "big-endian"
               : ident[EI_DATA] == ELFDATA2LSB ? "little-endian"
                                               : "unknown",
               ") than this machine's: rebuild the plugin for ", elf_machine_name(kHostMachine));
  return "";
}

// The fixed-size header: machine, type, and where the program header table is.
std::string header_problem(const Elf64_Ehdr& h, uint64_t size) {
  if (kHostMachine != 0 && h.e_machine != kHostMachine)
    return cat("built for ", elf_machine_name(h.e_machine), " (ELF machine ", h.e_machine,
               "), but this nanoattn runs on ", elf_machine_name(kHostMachine), " (", kHostMachine,
               "): rebuild the plugin on or for this machine");
  if (h.e_type != ET_DYN)
    return cat("an ELF ", h.e_type == ET_EXEC ? "executable" : h.e_type == ET_REL ? "object file (.o)" : "file",
               ", not a shared library: build the plugin with nanoattn_add_attention_plugin");
  if (h.e_phnum == 0) return cat("corrupt: a shared library without program headers cannot be loaded", kRebuild);
  if (h.e_phentsize != sizeof(Elf64_Phdr))
    return cat("corrupt: program headers of ", h.e_phentsize, " bytes, but 64-bit ELF has ", sizeof(Elf64_Phdr),
               kRebuild);
  const uint64_t ph_bytes = uint64_t(h.e_phnum) * h.e_phentsize;
  if (!inside(h.e_phoff, ph_bytes, size))
    return cat("truncated: the program header table ends at byte ", h.e_phoff + ph_bytes, " but the file has ",
               size, " bytes", kRebuild);
  return "";
}

// Every segment's bytes in the file: the loader maps them, and a page past the end is SIGBUS.
std::string segments_problem(std::ifstream& f, const Elf64_Ehdr& h, uint64_t size) {
  for (unsigned i = 0; i < h.e_phnum; ++i) {
    Elf64_Phdr p{};
    if (!read_at(f, h.e_phoff + uint64_t(i) * sizeof p, &p, sizeof p))
      return cat("cannot be read: program header ", i, " could not be read");
    if (!inside(p.p_offset, p.p_filesz, size))
      return cat("truncated: segment ", i, " ends at byte ", p.p_offset + p.p_filesz, " but the file has ", size,
                 " bytes", kRebuild);
  }
  return "";
}

// The section header table is optional (the loader does not read it); if named, it must be
// there, else the file was cut short.
std::string sections_problem(const Elf64_Ehdr& h, uint64_t size) {
  if (h.e_shoff == 0) return "";
  if (h.e_shnum > 0 && h.e_shentsize != sizeof(Elf64_Shdr))
    return cat("corrupt: section headers of ", h.e_shentsize, " bytes, but 64-bit ELF has ", sizeof(Elf64_Shdr),
               kRebuild);
  // e_shnum == 0 with a table: the count is in the first entry, which must be there at least.
  const uint64_t sh_bytes = uint64_t(h.e_shnum > 0 ? h.e_shnum : 1) * sizeof(Elf64_Shdr);
  if (!inside(h.e_shoff, sh_bytes, size))
    return cat("truncated: the section header table ends at byte ", h.e_shoff + sh_bytes, " but the file has ", size,
               " bytes", kRebuild);
  return "";
}

}  // namespace

std::string elf_machine_name(unsigned machine) {
  switch (machine) {
    case EM_X86_64: return "x86_64";
    case EM_386: return "i386";
    case EM_AARCH64: return "aarch64";
    case EM_ARM: return "arm";
    case EM_RISCV: return "riscv";
    case EM_PPC64: return "ppc64";
    case EM_S390: return "s390x";
    default: return cat("machine ", machine);
  }
}

std::string elf_problem(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) return "cannot be read: no such file";
  if (!std::filesystem::is_regular_file(status)) return "cannot be read: not a regular file";
  const uint64_t size = std::filesystem::file_size(path, ec);
  std::ifstream f(path, std::ios::binary);
  if (ec || !f) return cat("cannot be read: ", ec ? ec.message() : std::strerror(errno));
  Elf64_Ehdr h{};
  const size_t n = read_at(f, 0, &h, sizeof h) ? sizeof h : static_cast<size_t>(f.gcount());
  f.clear();  // a short read set eof; later reads seek again
  if (std::string why = ident_problem(h.e_ident, n, size); !why.empty()) return why;
  if (n < sizeof h)
    return cat("truncated: the ELF header needs ", sizeof h, " bytes but the file has ", size, " bytes", kRebuild);
  if (std::string why = header_problem(h, size); !why.empty()) return why;
  if (std::string why = segments_problem(f, h, size); !why.empty()) return why;
  return sections_problem(h, size);
}

}  // namespace na

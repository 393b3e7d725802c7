// Checking a candidate plugin file before dlopen: the dynamic loader maps the file's segments
// and trusts their offsets, so a truncated library (a copy or build cut short) crashes the
// process with SIGBUS inside dlopen instead of failing. We read the ELF headers ourselves and
// refuse a file that is not a 64-bit little-endian shared library for this machine, or whose
// headers point past its end.
#pragma once
#include <string>

namespace na {

// What is wrong with the file at `path` as a shared library for this machine, and what to do
// (e.g. "truncated: segment 2 ends at byte 81920 but the file has 4096 bytes; rebuild the
// plugin"); "" if dlopen may safely try it.
std::string elf_problem(const std::string& path);

// The name of an ELF machine number ("x86_64" for 62), or "machine <n>" for one we do not name.
std::string elf_machine_name(unsigned machine);

}  // namespace na

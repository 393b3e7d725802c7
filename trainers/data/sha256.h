// SHA-256 of files and strings: corpus checksums and the plugin hashes stored in checkpoints.
#pragma once
#include <string>

namespace na {

// Lower-case hex digest.
std::string sha256_hex(const std::string& bytes);
// Streams the file; throws na::Error naming the file if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace na

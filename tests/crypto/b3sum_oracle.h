// b3sum (Debian package b3sum), the independent BLAKE3 oracle of the crypto and blob tests:
// whether it is installed, a private directory for its input files, and running it.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

namespace aspen::testing {

inline bool has_b3sum() { return std::system("command -v b3sum >/dev/null 2>&1") == 0; }

inline constexpr const char* kNoB3sum =
    "b3sum is not on PATH: it is the oracle these tests compare against; install it with "
    "scripts/setup.sh (Debian package b3sum)";

// A private directory for input files, removed with everything in it.
class OracleDir {
 public:
  OracleDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "aspen-b3sum-XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ~OracleDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  OracleDir(const OracleDir&) = delete;
  OracleDir& operator=(const OracleDir&) = delete;

  std::filesystem::path write(const std::string& name, std::span<const uint8_t> data) const {
    const std::filesystem::path p = path_ / name;
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    f.close();
    if (!f) std::abort();
    return p;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// What `command` prints on stdout; is_ok false if it could not run or exited non-zero.
struct CommandOutput {
  std::string out;
  bool is_ok = false;
};
inline CommandOutput run_command(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  CommandOutput r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  r.is_ok = ::pclose(pipe) == 0;
  return r;
}

}  // namespace aspen::testing

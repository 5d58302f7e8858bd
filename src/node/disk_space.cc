#include "node/disk_space.h"

#include <sys/statvfs.h>

namespace aspen::node {

uint64_t disk_free_bytes(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

}  // namespace aspen::node

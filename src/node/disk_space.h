// Free disk space where a node keeps its data (for the storage alarm and snapshot installs).
#pragma once

#include <cstdint>
#include <string>

namespace aspen::node {

// Bytes an unprivileged writer may still use on the filesystem holding `path`. UINT64_MAX
// when it cannot be read, so an unreadable filesystem never raises an alarm by itself.
uint64_t disk_free_bytes(const std::string& path);

}  // namespace aspen::node

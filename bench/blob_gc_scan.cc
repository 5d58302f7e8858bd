// aspen-blob-gc-bench: how long blob GC takes to look at a store of many blobs.
//
//   build/aspen-blob-gc-bench [--blobs 100000] [--dir /tmp/aspen-gc-bench]
//
// Fills a fresh store (is_durable off: the fill is not what is measured) with N blobs of
// 1 KiB, then times, in the same run:
//   list       paging through every record (kMaxBlobListPage at a time): the floor
//   gc young   a GC pass where every blob is inside its grace period (nothing removed)
//   gc tagged  a GC pass where every blob is past it but protected (nothing removed)
//   gc all     a GC pass that removes every blob (records and both files of each)
// The node's GC adds, per run, one read of the tags and, for blobs it removes, one holder
// update per kMaxBlobsPerHoldersUpdate blobs through the leader (not measured here).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>

#include "blob/store/blob_store.h"

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t blobs = 100000;
  std::string dir = "/tmp/aspen-gc-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--blobs") == 0) blobs = std::stoul(argv[i + 1]);
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
  }
  std::filesystem::remove_all(dir);
  auto store = aspen::blob::BlobStore::open({.dir = dir, .is_durable = false});
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().to_string().c_str());
    return 1;
  }
  auto& s = **store;
  auto t = Clock::now();
  std::string bytes(1024, '\0');
  for (size_t i = 0; i < blobs; ++i) {
    std::memcpy(bytes.data(), &i, sizeof(i));
    auto imp = s.begin_import();
    if (!imp || !(*imp)->append(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())) ||
        !(*imp)->finish(std::nullopt, /*now_ms=*/1000)) {
      std::fprintf(stderr, "import %zu failed\n", i);
      return 1;
    }
  }
  std::printf("fill       %zu blobs of 1 KiB in %.0f ms\n", s.blob_count(), ms_since(t));

  t = Clock::now();
  size_t listed = 0;
  std::optional<aspen::blob::Blake3Hash> after;
  for (;;) {
    auto page = s.list(after, aspen::blob::kMaxBlobListPage);
    if (page.empty()) break;
    listed += page.size();
    after = page.back().hash;
  }
  const double list_ms = ms_since(t);
  std::printf("list       %zu records in %8.1f ms (baseline 1.00)\n", listed, list_ms);

  auto pass = [&](const char* name, uint64_t now_ms, uint64_t grace_ms, bool is_protected) {
    auto start = Clock::now();
    auto r = s.gc(now_ms, grace_ms, [&](const aspen::blob::Blake3Hash&) { return is_protected; });
    const double ms = ms_since(start);
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
      return;
    }
    std::printf("%-10s %zu scanned, %zu removed in %8.1f ms (%.2fx list)\n", name, static_cast<size_t>(r->scanned),
                static_cast<size_t>(r->removed), ms, ms / list_ms);
  };
  pass("gc young", 2000, 3600000, false);
  pass("gc tagged", 3600000 * 2, 3600000, true);
  pass("gc all", 3600000 * 2, 3600000, false);
  store->reset();
  std::filesystem::remove_all(dir);
  return 0;
}

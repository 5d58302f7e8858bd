#include "coord/leased_holders.h"

#include <algorithm>

#include <fmt/format.h>

namespace aspen::coord {

void write_holders(RecordWriter& w, const std::vector<LeasedHolder>& holders) {
  w.u64(holders.size());
  for (const auto& h : holders) w.str(h.id).u64(h.count).u64(h.lease_id);
}

Result<std::vector<LeasedHolder>> read_holders(RecordReader& r, size_t max_holders) {
  auto n = r.u64();
  if (!n) return std::unexpected(n.error());
  if (*n > max_holders) return make_error(ErrorCode::kCorruption, "holder list is longer than its limit");
  std::vector<LeasedHolder> out;
  for (uint64_t i = 0; i < *n; ++i) {
    LeasedHolder h;
    auto id = r.str();
    if (!id) return std::unexpected(id.error());
    auto count = r.u64();
    if (!count) return std::unexpected(count.error());
    auto lease = r.u64();
    if (!lease) return std::unexpected(lease.error());
    out.push_back(LeasedHolder{std::move(*id), *count, *lease});
  }
  return out;
}

std::string marker_key(const std::string& state_key, std::string_view holder) {
  return state_key + ":" + std::string(holder);
}

Result<std::set<std::string>> live_holder_ids(kv::KeyValueStore& store, const std::string& state_key,
                                              size_t max_holders) {
  const std::string prefix = state_key + ":";
  auto page = kv::scan_prefix(store, prefix, static_cast<uint32_t>(max_holders + 1));
  if (!page) return std::unexpected(page.error());
  std::set<std::string> live;
  for (const auto& kv : page->kvs()) live.insert(kv.key().substr(prefix.size()));
  return live;
}

bool prune_holders(std::vector<LeasedHolder>& holders, const std::set<std::string>& live) {
  auto before = holders.size();
  std::erase_if(holders, [&](const LeasedHolder& h) { return !live.contains(h.id); });
  return holders.size() != before;
}

}  // namespace aspen::coord

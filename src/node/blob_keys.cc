#include "node/blob_keys.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/encoding.h"

namespace aspen::node {

std::string blob_tag_key(std::string_view name) { return std::string(kBlobTagPrefix) + std::string(name); }

std::string blob_holders_key(const crypto::Blake3Hash& hash) {
  return std::string(kBlobHoldersPrefix) + crypto::blake3_to_hex(hash);
}

std::string blob_data_key(std::string_view raw_hash) {
  if (raw_hash.size() != crypto::kBlake3HashSizeBytes) return std::string(kBlobDataPrefix);
  return std::string(kBlobDataPrefix) + to_hex(raw_hash);
}

Status check_blob_tag_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxBlobTagNameBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("a tag name has 1 to {} bytes (kMaxBlobTagNameBytes), not {}", kMaxBlobTagNameBytes,
                                  name.size()));
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return make_error(ErrorCode::kInvalidArgument, "a tag name may not contain control characters");
    }
  }
  return {};
}

Result<crypto::Blake3Hash> blob_hash_from_bytes(std::string_view bytes) {
  if (bytes.size() != crypto::kBlake3HashSizeBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("a blob hash is {} bytes, not {}", crypto::kBlake3HashSizeBytes, bytes.size()));
  }
  crypto::Blake3Hash h{};
  std::memcpy(h.data(), bytes.data(), h.size());
  return h;
}

std::string encode_blob_holders(const std::vector<NodeId>& holders) {
  std::vector<NodeId> sorted = holders;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (NodeId id : sorted) put_u64_be(out, id);
  return out;
}

std::vector<NodeId> decode_blob_holders(std::string_view value) {
  std::vector<NodeId> out;
  if (value.size() % 8 != 0 || value.size() / 8 > limits::kMaxClusterVoters + limits::kMaxClusterLearners) return out;
  Decoder d(value);
  while (!d.is_empty()) out.push_back(*d.get_u64_be());
  return out;
}

}  // namespace aspen::node

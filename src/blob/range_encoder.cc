#include "blob/range_encoder.h"

#include <string>
#include <vector>

#include "blob/internal/tree.h"
#include "blob/outboard.h"

namespace aspen::blob {

using crypto::Blake3Hash;
using internal::kParentBytes;

Result<uint64_t> encoded_range_size_bytes(uint64_t size_bytes, ByteRange range) {
  Result<ByteRange> clamped = clamp_range(size_bytes, range);
  if (!clamped) return std::unexpected(clamped.error());
  const internal::GroupSpan groups = internal::groups_covering(*clamped);
  if (groups.first == groups.end) return uint64_t{0};
  const uint64_t data_bytes = std::min(groups.end * internal::kGroupBytes, size_bytes) -
                              groups.first * internal::kGroupBytes;
  const uint64_t parents = internal::parents_visited(0, internal::num_groups(size_bytes), groups);
  return data_bytes + parents * kParentBytes;
}

Status encode_range(const Blake3Hash& root, uint64_t size_bytes, std::span<const uint8_t> outboard,
                    const BlobReader& reader, ByteRange range, const BlobWriter& writer) {
  Result<ByteRange> clamped = clamp_range(size_bytes, range);
  if (!clamped) return std::unexpected(clamped.error());
  if (outboard.size() != outboard_size_bytes(size_bytes)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "outboard of " + std::to_string(outboard.size()) + " bytes for a blob of " +
                          std::to_string(size_bytes) + " bytes, which needs " +
                          std::to_string(outboard_size_bytes(size_bytes)));
  }
  internal::RangeWalk walk(internal::num_groups(size_bytes), internal::groups_covering(*clamped),
                           root);
  std::vector<uint8_t> group(static_cast<size_t>(std::min(size_bytes, internal::kGroupBytes)));
  while (!walk.is_done()) {
    const internal::TreeNode& node = walk.current();
    if (!node.is_group()) {
      const auto parent = outboard.subspan(static_cast<size_t>(node.preorder_index * kParentBytes))
                              .first<kParentBytes>();
      if (internal::parent_cv(parent, node.is_root) != node.cv) {
        return make_error(ErrorCode::kCorruption,
                          "local outboard: " + internal::describe(node, size_bytes) +
                              " does not match the hash above it");
      }
      if (Status s = writer(parent); !s) return s;
      const internal::Children children = internal::children_of(parent);
      walk.descend(children.left, children.right);
      continue;
    }
    const auto data =
        std::span(group).first(internal::group_size_bytes(size_bytes, node.first_group));
    if (Status s = read_exact(reader, node.first_group * internal::kGroupBytes, data); !s) return s;
    if (internal::group_cv(data, node.first_group, node.is_root) != node.cv) {
      return make_error(ErrorCode::kCorruption,
                        "local blob: " + internal::describe(node, size_bytes) +
                            " does not match its hash in the outboard");
    }
    if (Status s = writer(data); !s) return s;
    walk.finish_group();
  }
  return {};
}

}  // namespace aspen::blob

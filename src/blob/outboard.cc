#include "blob/outboard.h"

#include <algorithm>
#include <array>
#include <span>
#include <string>

#include "blob/internal/tree.h"
#include "core/assert.h"
#include "core/limits.h"

namespace aspen::blob {
namespace {

using crypto::Blake3Hash;
using internal::kGroupBytes;
using internal::kParentBytes;

// Groups read from the reader at once: large enough that a reader call and its copy cost
// little per byte, small enough to stay in the L2 cache while it is hashed.
constexpr uint64_t kBatchGroups = 16;

// Chaining values of a blob's groups, asked for in order, read and hashed a batch at a time
// (hashing many groups together keeps the wide kernels' lanes full for the parents inside
// each group too).
class GroupHasher {
 public:
  // Through `reader`, a batch at a time into a buffer of its own.
  GroupHasher(uint64_t size_bytes, const BlobReader* reader)
      : size_bytes_(size_bytes),
        reader_(reader),
        buffer_(static_cast<size_t>(std::min(size_bytes, kBatchGroups * kGroupBytes))) {}
  // Straight from `data`, in place.
  explicit GroupHasher(std::span<const uint8_t> data)
      : size_bytes_(data.size()), reader_(nullptr), data_(data) {}

  Result<Blake3Hash> cv(uint64_t group, bool is_root) {
    ASPEN_ASSERT(group >= batch_first_ && group <= batch_first_ + batch_groups_);
    if (group == batch_first_ + batch_groups_) {
      if (Status s = read_batch(group); !s) return std::unexpected(s.error());
    }
    if (is_root) {
      // A one-group blob: its group is the root, and its value the blob's hash.
      ASPEN_ASSERT(group == 0 && size_bytes_ <= kGroupBytes);
      return internal::group_cv(batch_, 0, true);
    }
    return cvs_[group - batch_first_];
  }

 private:
  Status read_batch(uint64_t first) {
    const uint64_t start = first * kGroupBytes;
    const size_t len =
        static_cast<size_t>(std::min(kBatchGroups * kGroupBytes, size_bytes_ - start));
    batch_first_ = first;
    batch_groups_ = std::max<uint64_t>(1, (len + kGroupBytes - 1) / kGroupBytes);
    if (reader_ != nullptr) {
      const std::span<uint8_t> into = std::span(buffer_).first(len);
      if (Status s = read_exact(*reader_, start, into); !s) return s;
      batch_ = into;
    } else {
      batch_ = data_.subspan(static_cast<size_t>(start), len);
    }
    if (size_bytes_ > kGroupBytes) {
      crypto::blake3_subtree_cvs(batch_, first * internal::kChunksPerGroup,
                                 internal::kChunksPerGroup,
                                 std::span(cvs_).first(static_cast<size_t>(batch_groups_)));
    }
    return {};
  }

  uint64_t size_bytes_;
  const BlobReader* reader_;  // null: the data is all in data_
  std::span<const uint8_t> data_;
  std::vector<uint8_t> buffer_;     // the batch read through reader_
  std::span<const uint8_t> batch_;  // the current batch's bytes
  std::array<Blake3Hash, kBatchGroups> cvs_{};
  uint64_t batch_first_ = 0;
  uint64_t batch_groups_ = 0;
};

// Value of the subtree over groups [lo, hi), whose parent (if it has one) is number
// `preorder`; writes the parents under it into `parents`. Recursion depth: the tree height.
Result<Blake3Hash> subtree_cv(GroupHasher& groups, uint64_t lo, uint64_t hi, uint64_t preorder,
                              bool is_root, std::span<uint8_t> parents) {
  if (hi - lo == 1) return groups.cv(lo, is_root);
  const uint64_t mid = lo + internal::left_groups(hi - lo);
  Result<Blake3Hash> left = subtree_cv(groups, lo, mid, preorder + 1, false, parents);
  if (!left) return left;
  Result<Blake3Hash> right = subtree_cv(groups, mid, hi, preorder + (mid - lo), false, parents);
  if (!right) return right;
  const size_t at = static_cast<size_t>(preorder * kParentBytes);
  ASPEN_ASSERT(at + kParentBytes <= parents.size());
  std::copy(left->begin(), left->end(), parents.begin() + at);
  std::copy(right->begin(), right->end(), parents.begin() + at + left->size());
  return crypto::blake3_parent_cv(*left, *right, is_root);
}

}  // namespace

uint64_t num_chunk_groups(uint64_t size_bytes) {
  return internal::num_groups(size_bytes);
}

uint64_t outboard_size_bytes(uint64_t size_bytes) {
  return (internal::num_groups(size_bytes) - 1) * kParentBytes;
}

namespace {

Result<Outboard> compute(uint64_t size_bytes, GroupHasher& groups) {
  if (Status s = internal::check_blob_size(size_bytes); !s) return std::unexpected(s.error());
  Outboard out;
  out.size_bytes = size_bytes;
  out.parents.resize(static_cast<size_t>(outboard_size_bytes(size_bytes)));
  Result<Blake3Hash> root =
      subtree_cv(groups, 0, internal::num_groups(size_bytes), 0, true, out.parents);
  if (!root) return std::unexpected(root.error());
  out.root = *root;
  return out;
}

}  // namespace

Result<Outboard> compute_outboard(uint64_t size_bytes, const BlobReader& reader) {
  GroupHasher groups(size_bytes, &reader);
  return compute(size_bytes, groups);
}

Result<Outboard> compute_outboard(std::span<const uint8_t> data) {
  GroupHasher groups(data);
  return compute(data.size(), groups);
}

}  // namespace aspen::blob

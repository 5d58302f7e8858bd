// Internals of src/blob: the shape of the BLAKE3 tree over chunk groups, and the pre-order
// walk over the part of it that a byte range needs.
//
// The leaves are chunk groups (kBlobChunkGroupBytes of data; the last may be short). Above
// them the tree is BLAKE3's own: a node over n >= 2 groups has a left child over the largest
// power of two of groups smaller than n, and a right child over the rest. Because a group is
// a power-of-two run of chunks, each of these nodes is a node of the BLAKE3 tree of the data,
// so the root's value is the blob's BLAKE3 hash. Parents are numbered in pre-order (a node,
// then its left subtree, then its right), which is the order of the outboard and of a range
// encoding: the parent over groups [lo, hi) with number p has its left child's number p + 1
// and its right child's p + (size of the left subtree in groups).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "blob/byte_range.h"
#include "core/assert.h"
#include "core/error.h"
#include "core/limits.h"
#include "crypto/blake3.h"

namespace aspen::blob::internal {

using crypto::Blake3Hash;

inline constexpr uint64_t kGroupBytes = limits::kBlobChunkGroupBytes;
inline constexpr uint64_t kChunksPerGroup = kGroupBytes / crypto::kBlake3ChunkSizeBytes;
// A parent node as stored and sent: its left child's chaining value, then its right child's.
inline constexpr size_t kParentBytes = 2 * crypto::kBlake3HashSizeBytes;

// InvalidArgument for a blob above kMaxBlobSizeBytes.
inline Status check_blob_size(uint64_t size_bytes) {
  if (size_bytes <= limits::kMaxBlobSizeBytes) return {};
  return make_error(ErrorCode::kInvalidArgument,
                    "blob size " + std::to_string(size_bytes) + " exceeds the limit of " +
                        std::to_string(limits::kMaxBlobSizeBytes) + " bytes (kMaxBlobSizeBytes)");
}

// Groups in a blob; an empty blob is one empty group (as BLAKE3 hashes it: one empty chunk).
inline uint64_t num_groups(uint64_t size_bytes) {
  return size_bytes == 0 ? 1 : (size_bytes + kGroupBytes - 1) / kGroupBytes;
}

inline size_t group_size_bytes(uint64_t size_bytes, uint64_t group) {
  ASPEN_ASSERT(group < num_groups(size_bytes));
  const uint64_t start = group * kGroupBytes;
  return static_cast<size_t>(std::min(kGroupBytes, size_bytes - start));
}

// Groups under the left child of a node over `n` >= 2 groups.
inline uint64_t left_groups(uint64_t n) {
  ASPEN_ASSERT(n >= 2);
  return std::bit_floor(n - 1);
}

// Groups [first, end).
struct GroupSpan {
  uint64_t first = 0;
  uint64_t end = 0;
  bool overlaps(uint64_t lo, uint64_t hi) const { return lo < end && first < hi; }
  bool contains(uint64_t lo, uint64_t hi) const { return first <= lo && hi <= end; }
};

// The groups holding a (clamped) range's bytes; none for an empty range.
inline GroupSpan groups_covering(const ByteRange& range) {
  if (range.is_empty()) return {};
  return {range.start_bytes / kGroupBytes, (range.end_bytes + kGroupBytes - 1) / kGroupBytes};
}

// Chaining value of group `group` (its data in `data`); with is_root (a one-group blob) the
// blob's hash.
inline Blake3Hash group_cv(std::span<const uint8_t> data, uint64_t group, bool is_root) {
  return crypto::blake3_subtree_cv(data, group * kChunksPerGroup, is_root);
}

// The two chaining values a parent node's 64 bytes hold.
struct Children {
  Blake3Hash left;
  Blake3Hash right;
};
inline Children children_of(std::span<const uint8_t, kParentBytes> node) {
  Children c;
  std::copy_n(node.begin(), c.left.size(), c.left.begin());
  std::copy_n(node.begin() + c.left.size(), c.right.size(), c.right.begin());
  return c;
}

// Value of a parent node from its 64 bytes.
inline Blake3Hash parent_cv(std::span<const uint8_t, kParentBytes> node, bool is_root) {
  const Children c = children_of(node);
  return crypto::blake3_parent_cv(c.left, c.right, is_root);
}

// Parents on a walk over `wanted` in the subtree over groups [lo, hi): all of a subtree the
// range covers, one per partly covered node. Only the two edges of the range recurse, so
// this is O(tree height).
inline uint64_t parents_visited(uint64_t lo, uint64_t hi, const GroupSpan& wanted) {
  if (hi - lo < 2 || !wanted.overlaps(lo, hi)) return 0;
  if (wanted.contains(lo, hi)) return hi - lo - 1;
  const uint64_t mid = lo + left_groups(hi - lo);
  return 1 + parents_visited(lo, mid, wanted) + parents_visited(mid, hi, wanted);
}

// A node of the tree on a range walk, with the value it must have.
struct TreeNode {
  uint64_t first_group = 0;
  uint64_t end_group = 0;
  uint64_t preorder_index = 0;  // among the parents; meaningful for parents only
  bool is_root = false;
  Blake3Hash cv{};  // the value its parent (or the root hash) says it has

  bool is_group() const { return end_group - first_group == 1; }
};

// "group 5 (bytes [81920, 98304))" or "parent 3, over groups [4, 8) (bytes [65536, 131072))",
// for error messages; `size_bytes` is the blob's.
inline std::string describe(const TreeNode& node, uint64_t size_bytes) {
  const ByteRange bytes{node.first_group * kGroupBytes,
                        std::min(node.end_group * kGroupBytes, size_bytes)};
  if (node.is_group())
    return "group " + std::to_string(node.first_group) + " (bytes " + to_string(bytes) + ")";
  return "parent " + std::to_string(node.preorder_index) + ", over groups [" +
         std::to_string(node.first_group) + ", " + std::to_string(node.end_group) + ") (bytes " +
         to_string(bytes) + ")";
}

// Visits, in pre-order, the nodes of a blob's tree whose groups overlap `wanted`: parents
// first, groups from left to right. The caller checks each node against its `cv`; after a
// parent it calls descend() with the children's values read from the parent's 64 bytes (the
// walk goes on only into the children the range needs), after a group finish_group().
//
// Holds one pending right child per level above the current node, so never more than
// kMaxBlobTreeHeight + 1 nodes, whatever the range.
class RangeWalk {
 public:
  RangeWalk() = default;  // walks nothing
  RangeWalk(uint64_t num_groups, GroupSpan wanted, const Blake3Hash& root) : wanted_(wanted) {
    ASPEN_ASSERT(num_groups >= 1 && num_groups <= (uint64_t{1} << limits::kMaxBlobTreeHeight));
    ASPEN_ASSERT(wanted.first <= wanted.end && wanted.end <= num_groups);
    if (wanted.first < wanted.end) push(TreeNode{0, num_groups, 0, true, root});
  }

  bool is_done() const { return depth_ == 0; }
  const TreeNode& current() const {
    ASPEN_ASSERT(!is_done());
    return stack_[depth_ - 1];
  }
  size_t depth() const { return depth_; }

  void descend(const Blake3Hash& left, const Blake3Hash& right) {
    const TreeNode node = current();
    ASPEN_ASSERT(!node.is_group());
    --depth_;
    const uint64_t mid = node.first_group + left_groups(node.end_group - node.first_group);
    // Right first, so the left child is walked first.
    if (wanted_.overlaps(mid, node.end_group)) {
      push(TreeNode{mid, node.end_group, node.preorder_index + (mid - node.first_group), false,
                    right});
    }
    if (wanted_.overlaps(node.first_group, mid)) {
      push(TreeNode{node.first_group, mid, node.preorder_index + 1, false, left});
    }
  }

  void finish_group() {
    ASPEN_ASSERT(current().is_group());
    --depth_;
  }

 private:
  void push(const TreeNode& node) {
    ASPEN_ASSERT(depth_ < stack_.size());
    stack_[depth_++] = node;
  }

  GroupSpan wanted_;
  std::array<TreeNode, limits::kMaxBlobTreeHeight + 1> stack_{};
  size_t depth_ = 0;
};

}  // namespace aspen::blob::internal

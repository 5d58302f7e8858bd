// Where the cluster keeps what it knows about blobs (docs/blobs.md), under the reserved
// prefix so clients read them only through the blob requests and never write them:
//   __aspen/blob/tag/<name>       -> the 32-byte hash the tag names (a named pin against GC)
//   __aspen/blob/holders/<hex>    -> the members holding the blob verified: node ids, u64
//                                    big-endian each, ascending; deleted when none is left
// and the name capabilities use for a blob's bytes (no such key is ever written):
//   __aspen/blob/data/<hex>
// Pure helpers; the blob service (blob_service.h) reads and writes these keys.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/limits.h"
#include "core/types.h"
#include "crypto/blake3.h"

namespace aspen::node {

inline constexpr std::string_view kBlobKeyPrefix = "__aspen/blob/";
inline constexpr std::string_view kBlobTagPrefix = "__aspen/blob/tag/";
inline constexpr std::string_view kBlobHoldersPrefix = "__aspen/blob/holders/";
inline constexpr std::string_view kBlobDataPrefix = "__aspen/blob/data/";

// A tag name: 1 to this many bytes of UTF-8 without control characters.
inline constexpr size_t kMaxBlobTagNameBytes = 256;
static_assert(kBlobTagPrefix.size() + kMaxBlobTagNameBytes <= limits::kMaxKeySizeBytes);
// Tags one tag-list page returns at most; the cluster keeps at most kMaxBlobTags tags (GC
// and replication read them all).
inline constexpr size_t kMaxBlobTagListPage = 1000;
inline constexpr size_t kMaxBlobTags = 100000;
// Blobs one holder update names: each costs a compare and a write in one transaction.
inline constexpr size_t kMaxBlobsPerHoldersUpdate = 60;
static_assert(2 * kMaxBlobsPerHoldersUpdate <= limits::kMaxTxnOps);

std::string blob_tag_key(std::string_view name);
std::string blob_holders_key(const crypto::Blake3Hash& hash);
// For authorization: the key a blob's bytes count as; `raw_hash` is the request's 32 bytes
// (anything else gives the prefix alone, which only a grant on the whole prefix covers).
std::string blob_data_key(std::string_view raw_hash);
// InvalidArgument naming the rule a bad tag name breaks.
Status check_blob_tag_name(std::string_view name);
// InvalidArgument unless exactly 32 bytes.
Result<crypto::Blake3Hash> blob_hash_from_bytes(std::string_view bytes);

// The holder list's value, and back (a malformed value reads as no holders).
std::string encode_blob_holders(const std::vector<NodeId>& holders);
std::vector<NodeId> decode_blob_holders(std::string_view value);

}  // namespace aspen::node

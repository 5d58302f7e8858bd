// The blob calls of the client library (docs/blobs.md): add a blob from a stream of bytes,
// get a byte range of one verified against its hash, status, list, tags, GC, and waiting
// until enough members hold a blob.
//
//   auto added = client::blob_add(client, read_from_file);          // streamed, never buffered whole
//   client::blob_tag_set(client, "release-1.2", hash);              // GC keeps it; members replicate it
//   client::blob_get(client, hash, {.range = {0, 1 << 20}}, write_to_file);
//
// add and get use their own streams on ALPN "aspen-blobs/0"; the rest are ordinary calls on
// "aspen-client" with the client's retries. A get checks every byte against the hash before
// it hands it over (blob/range_verifier.h); a holder that sends a bad byte or goes away is
// dropped and the next holder continues from the verified prefix.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "blob/byte_range.h"
#include "client/client.h"
#include "crypto/blake3.h"

namespace aspen::client {

inline constexpr const char* kBlobAlpn = "aspen-blobs/0";
// Raw bytes per message an add sends.
inline constexpr size_t kBlobAddMessageBytes = size_t{1} << 20;
static_assert(kBlobAddMessageBytes <= limits::kMaxFrameSizeBytes);

// Fills `out` with the next bytes of the blob; returns how many (0: the end).
using BlobSource = std::function<Result<size_t>(std::span<uint8_t> out)>;
// Takes the next verified bytes, at `offset_bytes` in the blob, in order.
using BlobSink = std::function<Status(uint64_t offset_bytes, std::span<const uint8_t> data)>;
// Bytes sent or received so far.
using BlobProgress = std::function<void(uint64_t done_bytes)>;

struct BlobAddOptions {
  Target target;  // the node that stores it first (default: the believed leader)
  std::optional<crypto::Blake3Hash> expected_hash;  // refuse the blob unless it hashes to this
  BlobProgress progress;
};
Result<cpb::BlobAddResponse> blob_add(Client& client, const BlobSource& source, const BlobAddOptions& options = {});

struct BlobGetOptions {
  Target target;  // 0: any member that holds it (as blob status says), one after another
  blob::ByteRange range{0, UINT64_MAX};
  BlobProgress progress;
};
// Hands exactly the range's bytes (clamped to the blob) to `sink`, verified. The answer
// says the blob's size and the range served.
Result<cpb::BlobGetResponse> blob_get(Client& client, const crypto::Blake3Hash& hash, const BlobGetOptions& options,
                                      const BlobSink& sink);

Result<cpb::BlobStatusResponse> blob_status(Client& client, const crypto::Blake3Hash& hash, Target target = {});
Result<cpb::BlobListResponse> blob_list(Client& client, const std::optional<crypto::Blake3Hash>& after,
                                        uint32_t limit = 0, Target target = {});
Status blob_tag_set(Client& client, const std::string& name, const crypto::Blake3Hash& hash);
// Whether the tag existed.
Result<bool> blob_tag_delete(Client& client, const std::string& name);
Result<cpb::BlobTagResponse> blob_tag_list(Client& client, const std::string& after_name = {}, uint32_t limit = 0);
Result<cpb::BlobGcResponse> blob_gc(Client& client, Target target);
// Polls blob status until at least `replicas` members hold the blob, or Timeout.
Result<cpb::BlobStatusResponse> blob_wait_replicas(Client& client, const crypto::Blake3Hash& hash, size_t replicas,
                                                   uint32_t timeout_ms);

}  // namespace aspen::client

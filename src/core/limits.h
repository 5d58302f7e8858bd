// Every bound in Aspen, in one place.
//
// Each queue, batch, message, scan and map has a named limit here, checked at the boundary
// where untrusted input enters, with an error that names the limit. Changing a number here
// changes behaviour everywhere: the static_asserts below keep related limits consistent.
#pragma once

#include <cstddef>
#include <cstdint>

namespace aspen::limits {

// --- key-value data model ---
inline constexpr size_t kMaxKeySizeBytes = 1024;
inline constexpr size_t kMaxValueSizeBytes = size_t{1} << 20;  // 1 MiB
inline constexpr size_t kMaxBatchSize = 1000;                  // keys per SetMulti/DeleteMulti
inline constexpr size_t kMaxTxnOps = 128;                      // compares + then + else ops
inline constexpr size_t kDefaultScanLimit = 1000;
inline constexpr size_t kMaxScanResults = 10000;
inline constexpr size_t kMaxScanResultBytes = size_t{16} << 20;  // a scan page stops early past this
inline constexpr size_t kMaxCommandSizeBytes = size_t{4} << 20;  // one serialized write command
inline constexpr uint64_t kMinLeaseTtlMs = 1000;
inline constexpr uint64_t kMaxLeaseTtlMs = uint64_t{30} * 24 * 3600 * 1000;  // 30 days
inline constexpr size_t kMaxLeasesPerExpire = 1000;

// --- wire and transport ---
inline constexpr size_t kMaxFrameSizeBytes = size_t{10} << 20;  // 10 MiB per framed message
inline constexpr uint32_t kConnectTimeoutMs = 5000;
inline constexpr uint32_t kStreamOpenTimeoutMs = 2000;
inline constexpr uint32_t kReadTimeoutMs = 10000;
inline constexpr size_t kMaxConnections = 500;
inline constexpr size_t kMaxStreamsPerConnection = 100;
inline constexpr size_t kMaxForwardHops = 3;

// --- raft ---
inline constexpr uint32_t kDefaultTickIntervalMs = 100;
inline constexpr uint32_t kDefaultHeartbeatMs = 500;
inline constexpr uint32_t kDefaultElectionTimeoutMinMs = 1500;
inline constexpr uint32_t kDefaultElectionTimeoutMaxMs = 3000;
inline constexpr size_t kMaxInflightMessages = 256;            // per follower, in replicate state
inline constexpr size_t kMaxEntriesPerMessageBytes = size_t{1} << 20;
inline constexpr size_t kMaxUncommittedEntriesBytes = size_t{64} << 20;
inline constexpr size_t kMaxCommittedEntriesPerReadyBytes = size_t{8} << 20;
inline constexpr size_t kMaxPendingReadIndexRequests = 10000;
inline constexpr size_t kMaxClusterVoters = 9;
inline constexpr size_t kMaxClusterLearners = 16;
inline constexpr size_t kMaxSnapshotSizeBytes = size_t{100} << 20;  // 100 MiB

static_assert(kMaxKeySizeBytes + kMaxValueSizeBytes < kMaxEntriesPerMessageBytes + kMaxFrameSizeBytes,
              "one maximal key/value must fit in one replication message");
static_assert(kMaxEntriesPerMessageBytes < kMaxFrameSizeBytes,
              "a raft append message must fit in one transport frame");
static_assert(kDefaultScanLimit <= kMaxScanResults);
static_assert(kMaxKeySizeBytes + kMaxValueSizeBytes < kMaxCommandSizeBytes,
              "a single maximal put must fit in one command");
static_assert(kMaxCommandSizeBytes < kMaxFrameSizeBytes);
static_assert(kDefaultHeartbeatMs % kDefaultTickIntervalMs == 0);
static_assert(kDefaultElectionTimeoutMinMs % kDefaultTickIntervalMs == 0);
static_assert(kDefaultHeartbeatMs < kDefaultElectionTimeoutMinMs,
              "followers must hear several heartbeats before an election timeout");
static_assert(kDefaultElectionTimeoutMaxMs == 2 * kDefaultElectionTimeoutMinMs,
              "randomized election timeout is drawn from [min, 2*min)");

}  // namespace aspen::limits

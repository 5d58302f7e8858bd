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
inline constexpr size_t kMaxScanResultBytes = size_t{4} << 20;  // a scan page (or a txn's ranges) stops early past this
inline constexpr size_t kMaxCommandSizeBytes = size_t{4} << 20;  // one serialized write command
inline constexpr uint64_t kMinLeaseTtlMs = 1000;
inline constexpr uint64_t kMaxLeaseTtlMs = uint64_t{30} * 24 * 3600 * 1000;  // 30 days
inline constexpr size_t kMaxLeasesPerExpire = 1000;
inline constexpr size_t kMaxLeases = 100000;            // leases the cluster holds at once
inline constexpr size_t kMaxKeysPerLease = 10000;       // keys attached to one lease
inline constexpr size_t kMaxLeaseListPage = 1000;       // leases in one LeaseList answer
static_assert(kMaxLeasesPerExpire <= kMaxLeases);
static_assert(kMaxLeaseListPage * 64 < (size_t{1} << 20), "a page of leases fits a frame with room to spare");
// Client sessions (exactly-once writes, kv/sessions.h).
inline constexpr size_t kMaxClientSessions = 10000;          // sessions the state machine keeps
inline constexpr size_t kMaxSessionResults = 128;            // answers kept per session (writes in flight)
inline constexpr size_t kMaxSessionResultBytes = size_t{4} << 10;  // a larger answer is kept as a summary
inline constexpr uint64_t kMinSessionIdleBeforeEvictionMs = 60000;  // a full table evicts only sessions idle this long
// A session record (every kept answer at its largest) stays a small value.
static_assert(kMaxSessionResults * (kMaxSessionResultBytes + 32) <= kMaxValueSizeBytes);

// --- wire and transport ---
inline constexpr size_t kMaxFrameSizeBytes = size_t{10} << 20;  // 10 MiB per framed message
// A scan page (or all of a transaction's ranges) ends with the record that crosses
// kMaxScanResultBytes; with every record's encoding overhead it still fits one frame.
static_assert(kMaxScanResultBytes + kMaxKeySizeBytes + kMaxValueSizeBytes + kMaxScanResults * 64 + 4096 <=
              kMaxFrameSizeBytes);
inline constexpr uint32_t kConnectTimeoutMs = 5000;
inline constexpr uint32_t kStreamOpenTimeoutMs = 2000;
inline constexpr uint32_t kReadTimeoutMs = 10000;
inline constexpr size_t kMaxStreamsPerConnection = 100;
// Connections, by class (transport/endpoint.h, docs/operations.md "Limits"). An inbound
// connection's class is decided once its handshake has named the protocol (ALPN) and the
// peer's key: a member's (Raft, or a member relaying client requests) takes a member slot,
// anything else a client slot, so clients can never take the slots Raft needs. Connections
// this process dials count apart, and inbound handshakes (class not yet known) apart again.
inline constexpr size_t kMaxClientConnections = 500;
inline constexpr size_t kMaxClientConnectionsPerAddress = 64;  // client connections from one IP address
inline constexpr size_t kMaxMemberConnections = 64;
inline constexpr size_t kMaxInboundHandshakes = 128;
inline constexpr size_t kMaxOutboundConnections = 500;
// Every connection state an endpoint holds at once, whatever its class.
inline constexpr size_t kMaxConnections =
    kMaxClientConnections + kMaxMemberConnections + kMaxInboundHandshakes + kMaxOutboundConnections;
// Received bytes held in partial frames (a frame whose header came, not all its payload),
// per connection and, for client connections, per endpoint (a node has one: per process).
// Credit for such bytes is returned as they arrive (a peer interleaving large frames must
// not stall on the window); a stream whose bytes would cross a cap is reset instead (code
// kAppErrorRecvBufferLimit), so memory stays bounded and an honest peer hears why.
inline constexpr size_t kMaxConnectionPartialFrameBytes = size_t{32} << 20;
inline constexpr size_t kMaxClientPartialFrameBytes = size_t{256} << 20;
// Sent bytes not yet acknowledged (queued answers, and answers in flight), per client
// connection and over all client connections of an endpoint (per process). A client that
// asks for many large answers and does not read them would otherwise make the node queue
// up to kMaxStreamsPerConnection answers of up to a frame each; a message that would cross
// a cap is not queued, its stream is reset instead (code kAppErrorSendBufferLimit), and
// the connection stays usable. Members are exempt: what a node sends its peers is bounded
// by Raft's own window.
inline constexpr size_t kMaxConnectionUnackedSendBytes = size_t{32} << 20;
inline constexpr size_t kMaxClientUnackedSendBytes = size_t{256} << 20;
// A request rate above this per client connection is refused (node/knobs.h sets the
// default; this is the most a knob may allow).
inline constexpr uint32_t kMaxClientRequestsPerSecond = 1000000;
// Unread received bytes per stream above which flow-control credit is withheld, so a slow
// reader stops the sender instead of growing memory.
inline constexpr size_t kMaxStreamUnreadBytes = size_t{16} << 20;
// Unacknowledged sent bytes per stream above which send() waits (send_async fails).
inline constexpr size_t kMaxStreamUnackedBytes = size_t{16} << 20;
inline constexpr size_t kMaxForwardHops = 3;
// Bytes of keys and values a node reads for linearizable answers in one go; the rest of a
// ReadIndex round is answered at the next tick, once these are on their way.
inline constexpr size_t kMaxReadAnswerBytesPerRound = size_t{32} << 20;
static_assert(kMaxReadAnswerBytesPerRound >= kMaxScanResultBytes + kMaxKeySizeBytes + kMaxValueSizeBytes,
              "one maximal scan page fits a round");

// --- watches ---
inline constexpr size_t kMaxWatchers = 10000;                    // watches one node serves at once
inline constexpr size_t kMaxWatchResponseBytes = size_t{1} << 20;  // events per message; a revision past it is split
// A watcher's answers the client has not yet acknowledged; past it the node sends nothing
// more to it until the client catches up (then resumes from the history).
inline constexpr size_t kMaxWatchUnackedBytes = size_t{1} << 20;
// The same summed over all watchers of a node: past it, only watchers with nothing
// unacknowledged are sent to. Memory for watch traffic stays below this plus one message
// per watcher.
inline constexpr size_t kMaxWatchTotalUnackedBytes = size_t{256} << 20;
// The committed changes one apply copies for watchers, who are sent them before the state
// machine's commit makes them readable (node/watch_service.h); the changes of a larger apply
// reach watchers from the store once committed.
inline constexpr size_t kMaxWatchEarlyBytes = size_t{1} << 20;
static_assert(kMaxWatchEarlyBytes <= kMaxWatchTotalUnackedBytes, "an early copy fits the watch traffic bound");
inline constexpr uint32_t kDefaultWatchProgressIntervalMs = 10000;
// How long a one-shot watch (WatchCreateRequest.is_once) may wait before the node answers
// that nothing happened.
inline constexpr uint32_t kMaxWatchOnceTimeoutMs = 60000;
inline constexpr uint32_t kMinWatchProgressIntervalMs = 100;
// A one-shot watch's answer: one revision's events and a scan page.
static_assert(kMaxWatchResponseBytes + 2 * (kMaxKeySizeBytes + kMaxValueSizeBytes) + kMaxScanResultBytes +
                      kMaxScanResults * 64 + 8192 <=
                  kMaxFrameSizeBytes,
              "a one-shot watch's answer fits one frame");
static_assert(kMaxWatchResponseBytes + 2 * (kMaxKeySizeBytes + kMaxValueSizeBytes) + 4096 <= kMaxFrameSizeBytes,
              "a watch message (events up to the bound, plus the one event with its previous version that "
              "crossed it) fits a frame");

// --- raft ---
// Timing (tick, heartbeat, election timeout), the in-flight window and other tuning are
// knobs, not limits: node/knobs.h.
inline constexpr size_t kMaxEntriesPerMessageBytes = size_t{1} << 20;
inline constexpr size_t kMaxUncommittedEntriesBytes = size_t{64} << 20;
inline constexpr size_t kMaxCommittedEntriesPerReadyBytes = size_t{8} << 20;
inline constexpr size_t kMaxPendingReadIndexRequests = 10000;
inline constexpr size_t kMaxClusterVoters = 9;
inline constexpr size_t kMaxClusterLearners = 16;
inline constexpr size_t kMaxNodeAddresses = 16;  // addresses a greeting or node record may name
// A snapshot built whole in memory (MemStore, the simulator, build_snapshot).
inline constexpr size_t kMaxSnapshotSizeBytes = size_t{100} << 20;  // 100 MiB
// A snapshot a node streams to a peer, which writes it to a file as it arrives: bounded by
// disk, not memory. The state machine is bounded by the LMDB map size long before this;
// the limit only stops a peer from filling the disk without end.
inline constexpr uint64_t kMaxStreamedSnapshotBytes = uint64_t{256} << 30;  // 256 GiB
// Snapshot sends waiting for the node's one sender thread (at most one per peer anyway).
inline constexpr size_t kMaxQueuedSnapshotSends = 2 * (kMaxClusterVoters + kMaxClusterLearners);

static_assert(kMaxKeySizeBytes + kMaxValueSizeBytes < kMaxEntriesPerMessageBytes + kMaxFrameSizeBytes,
              "one maximal key/value must fit in one replication message");
static_assert(kMaxEntriesPerMessageBytes < kMaxFrameSizeBytes,
              "a raft append message must fit in one transport frame");
static_assert(kDefaultScanLimit <= kMaxScanResults);
static_assert(kMaxBatchSize <= 65536 && kMaxTxnOps <= 65536,
              "a put's order within one command fits the 2 order bytes of its versionstamp (kv.proto, Put)");
static_assert(kMaxKeySizeBytes + kMaxValueSizeBytes < kMaxCommandSizeBytes,
              "a single maximal put must fit in one command");
static_assert(kMaxCommandSizeBytes < kMaxFrameSizeBytes);
static_assert(kMaxFrameSizeBytes <= kMaxStreamUnreadBytes,
              "a stream must be able to buffer one maximal frame before it withholds credit");
static_assert(kMaxFrameSizeBytes <= kMaxStreamUnackedBytes,
              "one maximal frame must fit in a stream's send buffer");
static_assert(kMaxConnectionPartialFrameBytes >= 3 * kMaxFrameSizeBytes,
              "a connection can receive a few maximal frames at once before any stream is reset");
static_assert(kMaxClientPartialFrameBytes >= 8 * kMaxConnectionPartialFrameBytes,
              "several client connections can fill their own cap before the process cap refuses anyone");
static_assert(kMaxConnectionUnackedSendBytes >= 3 * (kMaxFrameSizeBytes + 4),
              "an idle client connection can always be sent a maximal answer, and a few at once");
static_assert(kMaxConnectionUnackedSendBytes >= kMaxStreamUnackedBytes + kMaxFrameSizeBytes + 4,
              "one stream filling its own send buffer never crosses the connection's cap alone");
static_assert(kMaxClientUnackedSendBytes >= 8 * kMaxConnectionUnackedSendBytes,
              "several client connections can fill their own cap before the process cap refuses anyone");
static_assert(kMaxClientConnectionsPerAddress <= kMaxClientConnections);
static_assert(kMaxMemberConnections >= 2 * (kMaxClusterVoters + kMaxClusterLearners),
              "every peer's Raft link and its relaying client connection fit the member slots");

// --- capability tokens (src/auth) ---
inline constexpr size_t kMaxTokenCapabilities = 32;             // per level of a chain
inline constexpr size_t kMaxTokenChainDepth = 8;                // a root-issued token has depth 1
inline constexpr size_t kMaxTokenSizeBytes = size_t{16} << 10;  // one encoded token, whole chain
inline constexpr size_t kMaxRevokedTokens = 10000;              // revoked ids (16 bytes each) kept
// Capability prefixes are keys, so they share kMaxKeySizeBytes.

// A full-depth chain whose every level scopes one maximal prefix still fits: ids, keys,
// window, signature and protobuf framing take well under 256 bytes a level.
static_assert(kMaxTokenChainDepth * (kMaxKeySizeBytes + 256) <= kMaxTokenSizeBytes,
              "a maximal-depth chain with one maximal prefix per level must fit the token limit");
static_assert(kMaxTokenSizeBytes + kMaxKeySizeBytes + 4096 <= kMaxFrameSizeBytes,
              "a request carrying a token and a key must fit one transport frame");
static_assert(kMaxTokenSizeBytes <= kMaxValueSizeBytes, "a token can be stored as one value");
static_assert(kMaxRevokedTokens <= kMaxScanResults && kMaxRevokedTokens * 16 <= kMaxValueSizeBytes,
              "the revocation list is read with one scan, or kept as one value");

// --- blobs and verified streaming (src/blob) ---
// A blob is verified in chunk groups: 16 BLAKE3 chunks (1 KiB each), the leaves of the
// outboard tree. Smaller groups mean a smaller unit of loss on corruption but a larger
// outboard (64 bytes per group); 16 KiB is iroh-blobs' choice, an outboard of 1/256 the data.
inline constexpr size_t kBlobChunkGroupBytes = size_t{16} << 10;  // 16 KiB
inline constexpr uint64_t kMaxBlobSizeBytes = uint64_t{64} << 30;  // 64 GiB
// Levels of parent nodes above the groups in the largest blob's tree: a range verifier keeps
// one pending node per level (plus the one it reads), never more.
inline constexpr size_t kMaxBlobTreeHeight = 22;
// The outboard of the largest blob: one 64-byte parent (two chaining values) per group but one.
inline constexpr uint64_t kMaxBlobOutboardBytes = (kMaxBlobSizeBytes / kBlobChunkGroupBytes) * 64;

static_assert(kBlobChunkGroupBytes % 1024 == 0 && ((kBlobChunkGroupBytes / 1024) & (kBlobChunkGroupBytes / 1024 - 1)) == 0,
              "a chunk group is a power-of-two number of whole BLAKE3 chunks, so it is a subtree of the hash");
static_assert(kMaxBlobSizeBytes % kBlobChunkGroupBytes == 0);
static_assert(kMaxBlobSizeBytes / kBlobChunkGroupBytes <= (uint64_t{1} << kMaxBlobTreeHeight),
              "the largest blob's tree has at most kMaxBlobTreeHeight levels of parents");
static_assert(kBlobChunkGroupBytes + 64 <= kMaxFrameSizeBytes,
              "one group (or one parent node) of a range encoding fits one transport frame");
static_assert(kMaxBlobOutboardBytes <= kMaxBlobSizeBytes / 128, "an outboard is a small fraction of its blob");

// --- coordination (src/coord) ---
// Names and ids become parts of keys under the reserved prefix "__coord:".
inline constexpr size_t kMaxCoordNameBytes = 128;        // lock, queue, counter, ... names
inline constexpr size_t kMaxCoordHolderIdBytes = 128;    // holder, candidate, party, instance ids
inline constexpr size_t kMaxCoordRecordBytes = size_t{64} << 10;  // one encoded coordination record
inline constexpr size_t kMaxCoordCasAttempts = 1000;     // read-modify-CAS rounds before Unavailable
inline constexpr size_t kMaxCoordWaitAttempts = 100000;  // polls in one blocking wait, deadline or not
inline constexpr uint64_t kMaxCoordBackoffMs = 250;      // longest sleep between polls
inline constexpr size_t kMaxLockWaiters = 1000;          // holder and waiters queued on one lock
inline constexpr size_t kMaxSemaphorePermits = 100000;
inline constexpr size_t kMaxSemaphoreHolders = 256;      // distinct live holders of one semaphore
inline constexpr size_t kMaxSemaphoreWaiters = 64;       // waiters queued (in arrival order) on one semaphore
inline constexpr size_t kMaxRWLockReaders = 256;
inline constexpr size_t kMaxRWLockWaitingWriters = 64;
inline constexpr size_t kMaxBarrierParties = 256;
inline constexpr size_t kMaxServiceInstances = 1000;     // per service, returned by discover
inline constexpr size_t kMaxServiceMetadataEntries = 32;
inline constexpr size_t kMaxServiceAddressBytes = 256;
inline constexpr size_t kMaxQueuePayloadBytes = size_t{60} << 10;
inline constexpr size_t kMaxQueueLength = 10000;         // items (pending + in flight) per queue
inline constexpr size_t kMaxQueueItemsPerCall = 100;     // dequeue / peek batch
inline constexpr size_t kMaxQueueScanPerDequeue = 1000;  // items examined to find visible ones
inline constexpr uint32_t kMaxQueueDeliveryAttempts = 1000;
inline constexpr uint64_t kMaxQueueVisibilityTimeoutMs = uint64_t{12} * 3600 * 1000;
inline constexpr uint64_t kMaxSequenceBlockSize = 1000000;
inline constexpr uint64_t kMaxRateLimitCapacity = 1000000000;
inline constexpr uint64_t kMaxRateLimitRefillPerSecond = 1000000000;

static_assert(sizeof("__coord:") - 1 + 16 + kMaxCoordNameBytes + 1 + kMaxCoordHolderIdBytes + 32 <= kMaxKeySizeBytes,
              "a coordination key (prefix, kind, name, holder or sequence) must fit the key limit");
static_assert(kMaxCoordRecordBytes <= kMaxValueSizeBytes);
static_assert(kMaxQueuePayloadBytes + kMaxCoordHolderIdBytes + 64 <= kMaxCoordRecordBytes,
              "a queue item (payload, dedup id, bookkeeping) must fit one coordination record");
static_assert((kMaxSemaphoreHolders + kMaxSemaphoreWaiters) * (kMaxCoordHolderIdBytes + 32) <= kMaxCoordRecordBytes,
              "a full semaphore holder list and waiting line must fit one record");
static_assert((kMaxRWLockReaders + kMaxRWLockWaitingWriters + 1) * (kMaxCoordHolderIdBytes + 32) <= kMaxCoordRecordBytes);
static_assert(kMaxBarrierParties * (kMaxCoordHolderIdBytes + 8) <= kMaxCoordRecordBytes);
static_assert(kMaxSemaphoreHolders + kMaxSemaphoreWaiters < kMaxScanResults && kMaxRWLockReaders + kMaxRWLockWaitingWriters < kMaxScanResults,
              "holder markers are read with one scan");
static_assert(kMaxServiceInstances <= kMaxScanResults);
static_assert(kMaxQueueItemsPerCall <= kMaxQueueScanPerDequeue && kMaxQueueScanPerDequeue <= kMaxScanResults);
static_assert(kMaxQueueLength <= kMaxScanResults, "queue length is counted with one count-only scan");
static_assert(kMaxRateLimitCapacity <= UINT64_MAX / 1000, "tokens are kept in thousandths");
static_assert(kMaxCoordBackoffMs * 4 <= kMinLeaseTtlMs,
              "a waiter polls several times within the shortest lease");

// --- layers (src/layer) and SQL (src/sql) ---
// Nested tuples deeper than this are refused by unpack (the decoder recurses once a level).
inline constexpr size_t kMaxTupleNestingDepth = 64;
// Directory paths: names per path, bytes per name and per layer tag.
inline constexpr size_t kMaxDirectoryDepth = 32;
inline constexpr size_t kMaxDirectoryNameBytes = 255;
inline constexpr size_t kMaxDirectoryLayerBytes = 255;
// Transaction attempts (and allocator rounds) before a contended directory call gives up.
inline constexpr size_t kMaxDirectoryAttempts = 10000;
// The high-contention allocator: tries at claiming a candidate in one window before the
// window is read again, and window reads before an allocation gives up.
inline constexpr size_t kMaxAllocatorClaimsPerWindow = 64;
inline constexpr size_t kMaxAllocatorRounds = 10000;
// Rows one SQL transaction may write: each costs a compare and an operation of one KV
// transaction.
inline constexpr size_t kMaxSqlTxnRows = 60;
// Times an autocommit SQL statement whose commit found a conflict is run again before the
// conflict is reported.
inline constexpr size_t kMaxSqlConflictRetries = 16;
// Rows sql::Database::query() keeps in memory at most; the callback form streams instead.
inline constexpr size_t kMaxQueryResultRows = 1000000;
// Keys (or rows) a SQL virtual table asks for in its first page of a scan; later pages double
// up to kMaxScanResults, and a LIMIT sizes the first page itself.
inline constexpr size_t kSqlFirstPageKeys = 256;

static_assert(2 * kMaxTupleNestingDepth <= kMaxKeySizeBytes,
              "a key can hold a tuple nested to the limit (each level costs a code and a terminator)");
// A directory entry key is the node subspace (0xfe), the parent's prefix as a byte string
// (an allocator integer of at most 9 bytes, every byte possibly escaped), the SUBDIRS code and
// the name as a string (every byte possibly escaped, plus its code and terminator).
static_assert(1 + (2 + 2 * 9) + 1 + (2 + 2 * kMaxDirectoryNameBytes) <= kMaxKeySizeBytes,
              "a directory entry key with a maximal name fits the key limit");
static_assert(kMaxDirectoryLayerBytes <= kMaxValueSizeBytes);
static_assert(2 * kMaxDirectoryDepth + 3 <= kMaxTxnOps,
              "a move pins every entry on both paths, compares the destination and makes two writes: one txn");
static_assert(2 * kMaxSqlTxnRows <= kMaxTxnOps, "a SQL transaction's compares and writes fit one KV transaction");
static_assert(kMaxSqlTxnRows <= kMaxBatchSize);
static_assert(kSqlFirstPageKeys <= kMaxScanResults && kMaxScanResults <= kMaxQueryResultRows,
              "a scan page is a valid scan limit, and one page of results can always be kept");

// A node's recent log lines, kept in memory for GetLogs (core/log_ring.h): the newest lines
// up to both bounds; a longer message is cut to kMaxRecentLogLineBytes.
inline constexpr size_t kMaxRecentLogLines = 2000;
inline constexpr size_t kMaxRecentLogBytes = size_t{1} << 20;  // 1 MiB of messages
inline constexpr size_t kMaxRecentLogLineBytes = 4096;
inline constexpr size_t kDefaultGetLogsLines = 200;  // GetLogs with max_lines 0
static_assert(kMaxRecentLogBytes + kMaxRecentLogLines * 32 + 4096 <= kMaxFrameSizeBytes,
              "the whole ring, with each line's time and level, fits one GetLogs answer");

}  // namespace aspen::limits

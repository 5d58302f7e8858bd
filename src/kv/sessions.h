// Client sessions: exactly-once writes (Raft thesis §6.3).
//
// A write whose answer was lost (a timeout, a dropped connection, a leader that stepped down
// after relaying it) may or may not have been applied. Sending it again could apply it
// twice. So the client library gives each client a random session id and numbers its writes
// (kvpb::Session); the state machine keeps, per session, the answers of the writes the
// client has not yet seen answered, and a write that arrives again is answered from there
// without being applied again.
//
// Kept in the replicated key space under kSessionKeyPrefix (a reserved prefix clients cannot
// write), so every replica, snapshot and restart agrees on it. Bounded:
// - at most limits::kMaxSessionResults answers per session: the client says which of its
//   writes are all answered (first_incomplete) and those answers are dropped;
// - an answer over limits::kMaxSessionResultBytes is kept as a summary (revision and
//   outcome), and a retry of it gets SessionExpired naming the revision;
// - at most limits::kMaxClientSessions sessions: a new one evicts the longest idle session if
//   it has been idle for kMinSessionIdleBeforeEvictionMs (leader time), and is refused
//   (SessionExpired) otherwise.
// A write numbered below the session's first_incomplete, or of an evicted session, cannot be
// told apart from one already applied: it is refused with SessionExpired, never applied.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "aspen/kv.pb.h"
#include "core/error.h"
#include "core/types.h"
#include "kv/tables.h"

namespace aspen::kv {

inline constexpr std::string_view kSessionKeyPrefix = "__aspen/session/";
// The number of sessions kept (a decimal count), so a new session need not count them.
inline constexpr std::string_view kSessionCountKey = "__aspen/session-count";

std::string session_key(uint64_t client_id);

// Checks a command's session fields (when it has a session).
Status validate_session(const kvpb::Session& session);

// Whether write `sequence` is one the session has seen before: its answer is kept, or it is
// below first_incomplete (answered long ago). apply_in_session answers the first kind from
// the record and refuses the second; neither is applied again. A node asks this before
// refusing a resend for its own reasons (a storage alarm), which would tell the client that
// a write already applied was not.
bool session_has_seen(const kvpb::SessionRecord& record, uint64_t sequence);

// Applies `cmd`, which has a session, exactly once: `apply` runs only for a write the
// session has not seen; a repeat is answered with the kept result. An Error is a storage
// failure (the batch aborts), as for apply_command.
Result<kvpb::CommandResult> apply_in_session(KvTables& tables, const kvpb::Command& cmd, Index revision,
                                             const std::function<Result<kvpb::CommandResult>()>& apply);

}  // namespace aspen::kv

// The hybrid logical clock stamp a command carries (kv.proto Command.hlc, issue 17): the
// leader stamps every command it proposes from its HLC (node/node_hlc.h), the state machine
// writes the stamp into the KeyValue records the command changes (mod_hlc), and clients read
// it back. These helpers convert between the wire message and core/hlc.h's HlcTimestamp, and
// read a stamp from an entry's bytes without parsing the whole command.
//
// Stamps come from other nodes (and, from a faulty or hostile member, could be anything), so
// every stamp read here is clamped: physical time above kMaxHlcPhysicalMs (far above any
// real clock) reads as (kMaxHlcPhysicalMs, 0), so 2^32 stamps fit above any clamped one and
// nothing overflows. What no clamp can prevent: a member forging exactly the top stamp
// (kMaxHlcPhysicalMs, 2^32 - 1) makes later stamps saturate there (equal, never lower), and a
// faulty leader can write any stamps into its own entries; correct leaders after it still
// stamp above every stamp in the log.
#pragma once

#include <optional>
#include <string_view>

#include "aspen/kv.pb.h"
#include "core/hlc.h"

namespace aspen::kv {

// 2^48 ms after the Unix epoch: the year 10889.
inline constexpr uint64_t kMaxHlcPhysicalMs = uint64_t{1} << 48;

// The stamp, clamped as above.
HlcTimestamp clamp_hlc(HlcTimestamp t);
HlcTimestamp from_proto(const kvpb::Hlc& h);  // clamped
void to_proto(const HlcTimestamp& t, kvpb::Hlc* out);
// The command's stamp (clamped); nullopt when it has none (written before stamps existed).
std::optional<HlcTimestamp> command_hlc(const kvpb::Command& cmd);
// The stamp of a serialized Command (a normal Raft entry's data), reading only the fields in
// front of it; nullopt when it has none or the bytes are not a command.
std::optional<HlcTimestamp> peek_command_hlc(std::string_view command_bytes);
// The smallest stamp of `node` above `t` (t clamped first): the next logical count in the
// same millisecond, or the next millisecond when the count is full; never above the clamp.
// Saturates at (kMaxHlcPhysicalMs, 2^32 - 1): 2^32 stamps after a clamped one, so never in
// practice; from there on stamps stop increasing (they still never decrease).
HlcTimestamp hlc_successor(HlcTimestamp t, NodeId node);

}  // namespace aspen::kv

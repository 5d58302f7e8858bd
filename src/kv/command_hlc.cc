#include "kv/command_hlc.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>
#include <limits>

namespace aspen::kv {

namespace {
using google::protobuf::internal::WireFormatLite;
constexpr int kCommandHlcField = 3;  // kv.proto Command.hlc
}  // namespace

HlcTimestamp clamp_hlc(HlcTimestamp t) {
  // The count restarts at the clamp, so that 2^32 stamps still fit above a clamped one.
  if (t.physical_ms > kMaxHlcPhysicalMs) return HlcTimestamp{kMaxHlcPhysicalMs, 0, t.node_id};
  return t;
}

HlcTimestamp from_proto(const kvpb::Hlc& h) { return clamp_hlc(HlcTimestamp{h.physical_ms(), h.logical(), h.node_id()}); }

void to_proto(const HlcTimestamp& t, kvpb::Hlc* out) {
  out->set_physical_ms(t.physical_ms);
  out->set_logical(t.logical);
  out->set_node_id(t.node_id);
}

std::optional<HlcTimestamp> command_hlc(const kvpb::Command& cmd) {
  if (!cmd.has_hlc()) return std::nullopt;
  return from_proto(cmd.hlc());
}

std::optional<HlcTimestamp> peek_command_hlc(std::string_view bytes) {
  // Fields are read in wire order and skipped without copying until the stamp: a writer
  // serializes in field-number order (timestamp_ms, session, hlc, then the op), so this reads
  // a few bytes of a normal command. Any order is handled; bad bytes give nullopt.
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX)));
  kvpb::Hlc merged;  // several occurrences merge, as in a full parse
  bool is_found = false;
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return is_found ? std::optional(from_proto(merged)) : std::nullopt;  // end (or a bad tag)
    if (WireFormatLite::GetTagFieldNumber(tag) == kCommandHlcField &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t size = 0;
      if (!in.ReadVarint32(&size)) return std::nullopt;
      std::string sub;
      if (size > 64 || !in.ReadString(&sub, static_cast<int>(size))) return std::nullopt;  // a stamp is < 30 bytes
      if (!merged.MergeFromString(sub)) return std::nullopt;
      is_found = true;
      continue;
    }
    if (!WireFormatLite::SkipField(&in, tag)) return std::nullopt;
  }
}

HlcTimestamp hlc_successor(HlcTimestamp t, NodeId node) {
  t = clamp_hlc(t);
  if (t.logical < std::numeric_limits<uint32_t>::max()) return HlcTimestamp{t.physical_ms, t.logical + 1, node};
  if (t.physical_ms < kMaxHlcPhysicalMs) return HlcTimestamp{t.physical_ms + 1, 0, node};
  return HlcTimestamp{t.physical_ms, t.logical, std::max(t.node_id, node)};  // saturated
}

}  // namespace aspen::kv

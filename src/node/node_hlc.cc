#include "node/node_hlc.h"

#include "kv/command_hlc.h"

namespace aspen::node {

std::optional<HlcTimestamp> message_hlc(const raftpb::Message& m) {
  if (m.hlc_physical_ms() == 0) return std::nullopt;
  return kv::clamp_hlc(HlcTimestamp{m.hlc_physical_ms(), m.hlc_logical(), m.from()});
}

void NodeHlc::stamp(raftpb::Message& m, uint64_t physical_ms) {
  HlcTimestamp t = clock_.now(physical_ms);
  // A snapshot replaces the receiver's log, and with it the entry stamps its next proposal
  // must go above: its stamp says how high this node's log goes (see receive).
  if (m.type() == raftpb::MSG_SNAP && log_max_ && t < *log_max_) t = *log_max_;
  m.set_hlc_physical_ms(t.physical_ms);
  m.set_hlc_logical(t.logical);
}

std::optional<std::string> NodeHlc::advance(const HlcTimestamp& remote, uint64_t physical_ms) {
  auto r = clock_.update(remote, physical_ms);
  if (r) return std::nullopt;
  ++refused_total_;
  return r.error().message();
}

std::optional<std::string> NodeHlc::receive(const raftpb::Message& m, uint64_t physical_ms) {
  std::optional<std::string> refused;
  if (auto t = message_hlc(m)) {
    refused = advance(*t, physical_ms);
    // A snapshot's stamp is at least every stamp in the sender's log (stamp above): recorded
    // like an entry's, so a proposal after the install goes above the entries it replaced.
    if (m.type() == raftpb::MSG_SNAP) saw_log_stamp(*t);
  }
  // Entries a leader sends were stamped by it or by earlier leaders; a correct leader's own
  // stamp is above them all already, but the log order must hold whatever the sender is.
  std::optional<HlcTimestamp> entries_max;
  for (const auto& e : m.entries()) {
    if (e.type() != raftpb::ENTRY_NORMAL) continue;
    auto t = kv::peek_command_hlc(e.data());
    if (t && (!entries_max || *t > *entries_max)) entries_max = t;
  }
  if (entries_max) {
    saw_log_stamp(*entries_max);
    if (*entries_max > clock_.last()) {
      if (auto why = advance(*entries_max, physical_ms); why && !refused) refused = std::move(why);
    }
  }
  return refused;
}

HlcTimestamp NodeHlc::stamp_proposal(uint64_t physical_ms) {
  HlcTimestamp t = clock_.now(physical_ms);
  if (log_max_ && t <= *log_max_) t = kv::hlc_successor(*log_max_, t.node_id);
  log_max_ = t;
  return t;
}

void NodeHlc::saw_log_stamp(const HlcTimestamp& t) {
  const HlcTimestamp c = kv::clamp_hlc(t);
  if (!log_max_ || c > *log_max_) log_max_ = c;
}

}  // namespace aspen::node

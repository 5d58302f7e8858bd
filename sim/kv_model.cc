#include "sim/kv_model.h"

#include "core/encoding.h"
#include "core/limits.h"

namespace aspen::sim {

uint64_t fnv1a(std::string_view bytes, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string encode_command(const Command& c) {
  std::string out;
  out.push_back(static_cast<char>(c.kind));
  put_varint(out, c.client_id);
  put_varint(out, c.seq);
  put_length_prefixed(out, c.key);
  put_length_prefixed(out, c.value);
  out.push_back(c.expected.has_value() ? 1 : 0);
  if (c.expected) put_length_prefixed(out, *c.expected);
  return out;
}

Result<Command> decode_command(std::string_view bytes) {
  Decoder d(bytes);
  Command c;
  auto kind = d.get_bytes(1);
  if (!kind) return std::unexpected(kind.error());
  auto k = static_cast<uint8_t>((*kind)[0]);
  if (k != 1 && k != 2) return make_error(ErrorCode::kCorruption, "unknown command kind");
  c.kind = static_cast<CommandKind>(k);
  auto client = d.get_varint();
  auto seq = client ? d.get_varint() : client;
  if (!seq) return std::unexpected(seq.error());
  c.client_id = *client;
  c.seq = *seq;
  auto key = d.get_length_prefixed(limits::kMaxKeySizeBytes);
  if (!key) return std::unexpected(key.error());
  auto value = d.get_length_prefixed(limits::kMaxValueSizeBytes);
  if (!value) return std::unexpected(value.error());
  c.key = *key;
  c.value = *value;
  auto has_expected = d.get_bytes(1);
  if (!has_expected) return std::unexpected(has_expected.error());
  if ((*has_expected)[0] == 1) {
    auto expected = d.get_length_prefixed(limits::kMaxValueSizeBytes);
    if (!expected) return std::unexpected(expected.error());
    c.expected = std::string(*expected);
  }
  if (!d.is_empty()) return make_error(ErrorCode::kCorruption, "trailing bytes after command");
  return c;
}

ApplyResult KvModel::apply(const Command& c) {
  ApplyResult r{c.client_id, c.seq, false, false};
  auto& session = sessions_[c.client_id];
  if (c.seq <= session.seq) {
    r.is_duplicate = true;
    r.cas_succeeded = session.cas_succeeded;
    return r;
  }
  session.seq = c.seq;
  if (c.kind == CommandKind::kWrite) {
    data_[c.key] = c.value;
    session.cas_succeeded = false;
    return r;
  }
  auto it = data_.find(c.key);
  bool matches = c.expected ? (it != data_.end() && it->second == *c.expected) : it == data_.end();
  if (matches) data_[c.key] = c.value;
  r.cas_succeeded = matches;
  session.cas_succeeded = matches;
  return r;
}

std::optional<std::string> KvModel::get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::string KvModel::serialize() const {
  std::string out;
  put_varint(out, data_.size());
  for (const auto& [k, v] : data_) {
    put_length_prefixed(out, k);
    put_length_prefixed(out, v);
  }
  put_varint(out, sessions_.size());
  for (const auto& [client, s] : sessions_) {
    put_varint(out, client);
    put_varint(out, s.seq);
    out.push_back(s.cas_succeeded ? 1 : 0);
  }
  return out;
}

Result<KvModel> KvModel::deserialize(std::string_view bytes) {
  KvModel m;
  Decoder d(bytes);
  auto n = d.get_varint();
  if (!n) return std::unexpected(n.error());
  for (uint64_t i = 0; i < *n; ++i) {
    auto k = d.get_length_prefixed(limits::kMaxKeySizeBytes);
    if (!k) return std::unexpected(k.error());
    auto v = d.get_length_prefixed(limits::kMaxValueSizeBytes);
    if (!v) return std::unexpected(v.error());
    m.data_.emplace(std::string(*k), std::string(*v));
  }
  auto ns = d.get_varint();
  if (!ns) return std::unexpected(ns.error());
  for (uint64_t i = 0; i < *ns; ++i) {
    auto client = d.get_varint();
    auto seq = client ? d.get_varint() : client;
    auto ok = seq ? d.get_bytes(1) : Result<std::string_view>(std::unexpected(seq.error()));
    if (!ok) return std::unexpected(ok.error());
    m.sessions_[*client] = Session{*seq, (*ok)[0] == 1};
  }
  if (!d.is_empty()) return make_error(ErrorCode::kCorruption, "trailing bytes after kv snapshot");
  return m;
}

uint64_t KvModel::hash() const { return fnv1a(serialize()); }

}  // namespace aspen::sim

#include "coord/coord_common.h"

#include "kv/commands.h"

#include <fmt/format.h>

#include "core/assert.h"
#include "core/encoding.h"

namespace aspen::coord {

std::string coord_key(std::string_view kind, std::string_view name) {
  std::string k(kCoordPrefix);
  k.append(kind).push_back(':');
  k.append(name);
  return k;
}

std::string coord_key(std::string_view kind, std::string_view name, std::string_view sub) {
  std::string k = coord_key(kind, name);
  k.push_back(':');
  k.append(sub);
  return k;
}

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '/';
}

Status validate_chars(std::string_view what, std::string_view s, size_t max_bytes, bool allow_at) {
  if (s.empty()) return make_error(ErrorCode::kInvalidArgument, fmt::format("{} must not be empty", what));
  if (s.size() > max_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} is {} bytes; the limit is {} bytes", what, s.size(), max_bytes));
  }
  for (char c : s) {
    if (!is_name_char(c) && !(allow_at && c == '@')) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("{} may contain only letters, digits and . _ - /{} (found byte 0x{:02x})",
                                    what, allow_at ? " @" : "", static_cast<unsigned char>(c)));
    }
  }
  return {};
}

}  // namespace

Status validate_name(std::string_view name) {
  return validate_chars("name", name, limits::kMaxCoordNameBytes, false);
}

Status validate_id(std::string_view what, std::string_view id) {
  return validate_chars(what, id, limits::kMaxCoordHolderIdBytes, true);
}

Status validate_ttl_ms(uint64_t ttl_ms) {
  if (ttl_ms < limits::kMinLeaseTtlMs || ttl_ms > limits::kMaxLeaseTtlMs) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("ttl {} ms is outside [{} ms, {} ms]", ttl_ms, limits::kMinLeaseTtlMs,
                                  limits::kMaxLeaseTtlMs));
  }
  return {};
}

uint64_t backoff_ms(uint32_t attempt, uint64_t random) {
  uint64_t full = attempt >= 16 ? limits::kMaxCoordBackoffMs
                                : std::min<uint64_t>(limits::kMaxCoordBackoffMs, uint64_t{1} << attempt);
  uint64_t half = full / 2;
  uint64_t ms = half + random % (full - half + 1);
  ASPEN_ASSERT(ms >= 1 || full == 1);
  return std::max<uint64_t>(ms, 1);
}

RecordWriter& RecordWriter::u64(uint64_t v) {
  put_varint(out_, v);
  return *this;
}

RecordWriter& RecordWriter::str(std::string_view s) {
  put_length_prefixed(out_, s);
  return *this;
}

Result<RecordReader> RecordReader::open(std::string_view bytes, uint8_t kind, std::string_view key) {
  RecordReader r(bytes, key);
  if (bytes.empty() || static_cast<uint8_t>(bytes[0]) != kind) return std::unexpected(r.corrupt("wrong record kind"));
  r.rest_.remove_prefix(1);
  return r;
}

Error RecordReader::corrupt(std::string_view why) const {
  return Error(ErrorCode::kCorruption, fmt::format("coordination record at '{}' is malformed: {}", key_, why));
}

Result<uint64_t> RecordReader::u64() {
  Decoder d(rest_);
  auto v = d.get_varint();
  if (!v) return std::unexpected(corrupt(v.error().message()));
  rest_ = rest_.substr(rest_.size() - d.remaining());
  return *v;
}

Result<std::string> RecordReader::str() {
  Decoder d(rest_);
  auto v = d.get_length_prefixed(limits::kMaxValueSizeBytes);
  if (!v) return std::unexpected(corrupt(v.error().message()));
  std::string out(*v);
  rest_ = rest_.substr(rest_.size() - d.remaining());
  return out;
}

Status RecordReader::finish() {
  if (!rest_.empty()) return std::unexpected(corrupt("trailing bytes"));
  return {};
}

kvpb::Compare cmp_mod_revision(std::string_view key, uint64_t mod_revision) {
  kvpb::Compare c;
  c.set_key(std::string(key));
  c.set_target(kvpb::Compare::TARGET_MOD_REVISION);
  c.set_op(kvpb::Compare::OP_EQUAL);
  c.set_number(mod_revision);
  return c;
}

kvpb::Compare cmp_version(std::string_view key, uint64_t version) {
  kvpb::Compare c;
  c.set_key(std::string(key));
  c.set_target(kvpb::Compare::TARGET_VERSION);
  c.set_op(kvpb::Compare::OP_EQUAL);
  c.set_number(version);
  return c;
}

kvpb::TxnOp op_put(std::string_view key, std::string value, uint64_t lease_id) {
  kvpb::TxnOp op;
  op.mutable_put()->set_key(std::string(key));
  op.mutable_put()->set_value(std::move(value));
  op.mutable_put()->set_lease_id(lease_id);
  return op;
}

kvpb::TxnOp op_delete(std::string_view key) {
  kvpb::TxnOp op;
  op.mutable_delete_()->set_key(std::string(key));
  return op;
}

kvpb::TxnOp op_get(std::string_view key) {
  kvpb::TxnOp op;
  *op.mutable_range() = kv::key_range(key);
  return op;
}

kvpb::TxnOp op_scan_prefix(std::string_view prefix, uint32_t limit) {
  ASPEN_ASSERT(limit > 0);
  kvpb::TxnOp op;
  auto* range = op.mutable_range();
  range->set_start(std::string(prefix));
  range->set_is_prefix(true);
  range->set_limit(limit);
  return op;
}

Result<kvpb::CommandResult> run_txn(kv::KeyValueStore& store, TxnSpec spec) {
  kvpb::Command cmd;
  auto* txn = cmd.mutable_txn();
  for (auto& c : spec.compares) *txn->add_compares() = std::move(c);
  for (auto& op : spec.success) *txn->add_success() = std::move(op);
  for (auto& op : spec.failure) *txn->add_failure() = std::move(op);
  auto r = store.execute(std::move(cmd));
  if (!r) return r;
  if (auto s = kv::result_status(*r); !s) return std::unexpected(s.error());
  return r;
}

std::optional<kvpb::KeyValue> txn_read(const kvpb::CommandResult& r, int index) {
  if (index >= r.responses_size()) return std::nullopt;
  const auto& resp = r.responses(index);
  if (!resp.has_range() || resp.range().kvs_size() == 0) return std::nullopt;
  return resp.range().kvs(0);
}

Error contention_error(std::string_view what) {
  return Error(ErrorCode::kUnavailable,
               fmt::format("{}: gave up after {} conflicting compare-and-set rounds; retry later", what,
                           limits::kMaxCoordCasAttempts));
}

}  // namespace aspen::coord

#include "kv/commands.h"

#include <fmt/format.h>

#include <charconv>

#include "core/assert.h"
#include "core/limits.h"

namespace aspen::kv {

Status validate_key(std::string_view key) {
  if (key.empty()) return make_error(ErrorCode::kInvalidArgument, "key must not be empty");
  if (key.size() > limits::kMaxKeySizeBytes) {
    return make_error(ErrorCode::kKeyTooLarge,
                      fmt::format("key is {} bytes; the limit is {} bytes", key.size(),
                                  limits::kMaxKeySizeBytes));
  }
  return {};
}

Status validate_value(std::string_view value) {
  if (value.size() > limits::kMaxValueSizeBytes) {
    return make_error(ErrorCode::kValueTooLarge,
                      fmt::format("value is {} bytes; the limit is {} bytes", value.size(),
                                  limits::kMaxValueSizeBytes));
  }
  return {};
}

Status validate_range(const kvpb::RangeRequest& range) {
  // One byte of slack: the exclusive end just past the longest key is key + '\0'.
  if (range.start().size() > limits::kMaxKeySizeBytes + 1 || range.end().size() > limits::kMaxKeySizeBytes + 1) {
    return make_error(ErrorCode::kKeyTooLarge,
                      fmt::format("range bound is longer than the {} byte key limit",
                                  limits::kMaxKeySizeBytes));
  }
  if (range.limit() > limits::kMaxScanResults) {
    return make_error(ErrorCode::kScanTooLarge,
                      fmt::format("scan limit {} exceeds the maximum of {}", range.limit(),
                                  limits::kMaxScanResults));
  }
  if (range.is_prefix() && !range.end().empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a prefix scan takes no end key");
  }
  if (!range.continuation().empty()) {
    // Checked here, not only where a range is read: a range inside a transaction is read at
    // apply, where a bad token must not be mistaken for a storage failure.
    const std::string& tok = range.continuation();
    if (tok[0] != kContinuationVersion) return make_error(ErrorCode::kInvalidArgument, "malformed continuation token");
    const std::string_view after = std::string_view(tok).substr(1);
    const std::string end = range_end(range);
    if (after < range.start() || (!end.empty() && after >= end)) {
      return make_error(ErrorCode::kInvalidArgument, "continuation token does not belong to this range");
    }
  }
  if (!range.is_prefix() && !range.end().empty() && range.end() <= range.start()) {
    return make_error(ErrorCode::kInvalidArgument, "scan end must be greater than its start");
  }
  return {};
}

void write_versionstamp(std::string& bytes, uint32_t offset, uint64_t revision, uint16_t order) {
  ASPEN_ASSERT(uint64_t{offset} + kVersionstampSizeBytes <= bytes.size());
  for (size_t i = 0; i < 8; ++i) bytes[offset + i] = static_cast<char>((revision >> (56 - 8 * i)) & 0xff);
  bytes[offset + 8] = static_cast<char>(order >> 8);
  bytes[offset + 9] = static_cast<char>(order & 0xff);
}

namespace {

// A versionstamp's 10 bytes must lie within the key or value it is written into.
Status validate_versionstamp_offset(uint32_t offset, size_t size_bytes, std::string_view what) {
  if (uint64_t{offset} + kVersionstampSizeBytes > size_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} versionstamp at offset {} does not fit in {} bytes", what, offset, size_bytes));
  }
  return {};
}

Status validate_put(const kvpb::Put& put) {
  if (auto s = validate_key(put.key()); !s) return s;
  if (auto s = validate_value(put.value()); !s) return s;
  if (put.has_key_versionstamp_offset()) {
    if (auto s = validate_versionstamp_offset(put.key_versionstamp_offset(), put.key().size(), "key"); !s) return s;
  }
  if (put.has_value_versionstamp_offset()) {
    if (auto s = validate_versionstamp_offset(put.value_versionstamp_offset(), put.value().size(), "value"); !s) return s;
  }
  return {};
}

Status validate_txn_op(const kvpb::TxnOp& op) {
  switch (op.op_case()) {
    case kvpb::TxnOp::kPut: return validate_put(op.put());
    case kvpb::TxnOp::kDelete: return validate_key(op.delete_().key());
    case kvpb::TxnOp::kRange: return validate_range(op.range());
    case kvpb::TxnOp::OP_NOT_SET: break;
  }
  return make_error(ErrorCode::kInvalidArgument, "transaction operation has no type");
}

Status validate_txn(const kvpb::Txn& txn) {
  size_t ops = static_cast<size_t>(txn.compares_size() + txn.success_size() + txn.failure_size());
  if (ops > limits::kMaxTxnOps) {
    return make_error(ErrorCode::kTxnTooLarge,
                      fmt::format("transaction has {} compares and operations; the limit is {}",
                                  ops, limits::kMaxTxnOps));
  }
  for (const auto& c : txn.compares()) {
    if (auto s = validate_key(c.key()); !s) return s;
    if (auto s = validate_value(c.value()); !s) return s;
  }
  for (const auto& op : txn.success()) {
    if (auto s = validate_txn_op(op); !s) return s;
  }
  for (const auto& op : txn.failure()) {
    if (auto s = validate_txn_op(op); !s) return s;
  }
  return {};
}

Status validate_ttl(uint64_t ttl_ms) {
  if (ttl_ms < limits::kMinLeaseTtlMs || ttl_ms > limits::kMaxLeaseTtlMs) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("lease TTL {} ms is outside [{} ms, {} ms]", ttl_ms,
                                  limits::kMinLeaseTtlMs, limits::kMaxLeaseTtlMs));
  }
  return {};
}

Status validate_batch_size(size_t n) {
  if (n > limits::kMaxBatchSize) {
    return make_error(ErrorCode::kBatchTooLarge,
                      fmt::format("batch has {} keys; the limit is {}", n, limits::kMaxBatchSize));
  }
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "batch is empty");
  return {};
}

}  // namespace

Status validate_command(const kvpb::Command& cmd) {
  if (cmd.ByteSizeLong() > limits::kMaxCommandSizeBytes) {
    return make_error(ErrorCode::kBatchTooLarge,
                      fmt::format("command is {} bytes; the limit is {} bytes", cmd.ByteSizeLong(),
                                  limits::kMaxCommandSizeBytes));
  }
  switch (cmd.op_case()) {
    case kvpb::Command::kPut: return validate_put(cmd.put());
    case kvpb::Command::kDelete: return validate_key(cmd.delete_().key());
    case kvpb::Command::kSetMulti: {
      if (auto s = validate_batch_size(static_cast<size_t>(cmd.set_multi().puts_size())); !s) return s;
      for (const auto& p : cmd.set_multi().puts()) {
        if (auto s = validate_put(p); !s) return s;
      }
      break;
    }
    case kvpb::Command::kDeleteMulti: {
      if (auto s = validate_batch_size(static_cast<size_t>(cmd.delete_multi().keys_size())); !s) return s;
      for (const auto& k : cmd.delete_multi().keys()) {
        if (auto s = validate_key(k); !s) return s;
      }
      break;
    }
    case kvpb::Command::kCas: {
      if (auto s = validate_key(cmd.cas().key()); !s) return s;
      if (auto s = validate_value(cmd.cas().expected_value()); !s) return s;
      if (auto s = validate_value(cmd.cas().new_value()); !s) return s;
      break;
    }
    case kvpb::Command::kCad: {
      if (auto s = validate_key(cmd.cad().key()); !s) return s;
      if (auto s = validate_value(cmd.cad().expected_value()); !s) return s;
      break;
    }
    case kvpb::Command::kTxn: return validate_txn(cmd.txn());
    case kvpb::Command::kLeaseGrant: return validate_ttl(cmd.lease_grant().ttl_ms());
    case kvpb::Command::kLeaseRevoke:
    case kvpb::Command::kLeaseKeepalive: return {};
    case kvpb::Command::kLeaseExpire:
      if (static_cast<size_t>(cmd.lease_expire().ids_size()) > limits::kMaxLeasesPerExpire) {
        return make_error(ErrorCode::kBatchTooLarge, "too many leases in one expiry");
      }
      return {};
    case kvpb::Command::kAdd: return validate_key(cmd.add().key());
    case kvpb::Command::kCompact:
      if (cmd.compact().revision() == 0) return make_error(ErrorCode::kInvalidArgument, "compact needs a revision above 0");
      return {};
    case kvpb::Command::OP_NOT_SET:
      return make_error(ErrorCode::kInvalidArgument, "command has no operation");
  }
  return {};
}

Result<int64_t> parse_int64_value(std::string_view value) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
    return make_error(ErrorCode::kInvalidArgument, "the value is not a decimal signed 64-bit integer");
  }
  return v;
}

Result<int64_t> checked_add(int64_t value, int64_t delta) {
  int64_t out = 0;
  if (__builtin_add_overflow(value, delta, &out)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("adding {} to {} would overflow a 64-bit counter", delta, value));
  }
  return out;
}

kvpb::RangeRequest key_range(std::string_view key) {
  kvpb::RangeRequest req;
  req.set_start(std::string(key));
  req.set_end(std::string(key) + '\0');
  req.set_limit(1);
  return req;
}

}  // namespace aspen::kv

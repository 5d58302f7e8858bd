#include "coord/owned_key.h"

#include <fmt/format.h>

namespace aspen::coord {

namespace {
constexpr uint8_t kOwnerRecord = 'O';
}

std::string encode_owner(const Owner& o) {
  return RecordWriter(kOwnerRecord).str(o.holder).str(o.value).u64(o.lease_id).finish();
}

Result<Owner> decode_owner(const kvpb::KeyValue& kv) {
  auto r = RecordReader::open(kv.value(), kOwnerRecord, kv.key());
  if (!r) return std::unexpected(r.error());
  Owner o;
  auto holder = r->str();
  if (!holder) return std::unexpected(holder.error());
  auto value = r->str();
  if (!value) return std::unexpected(value.error());
  auto lease = r->u64();
  if (!lease) return std::unexpected(lease.error());
  if (auto s = r->finish(); !s) return std::unexpected(s.error());
  o.holder = std::move(*holder);
  o.value = std::move(*value);
  o.lease_id = *lease;
  o.fencing_token = kv.create_revision();
  return o;
}

Result<ClaimResult> claim_owned_key(kv::KeyValueStore& store, const std::string& key, const Owner& owner) {
  TxnSpec spec;
  spec.compares.push_back(cmp_version(key, 0));
  spec.success.push_back(op_put(key, encode_owner(owner), owner.lease_id));
  spec.failure.push_back(op_get(key));
  auto r = run_txn(store, std::move(spec));
  if (!r) return std::unexpected(r.error());
  ClaimResult out;
  if (r->succeeded()) {
    out.is_claimed = true;
    out.owner = owner;
    out.owner.fencing_token = r->revision();  // == the key's create_revision
    return out;
  }
  auto current = txn_read(*r, 0);
  if (current) {
    auto o = decode_owner(*current);
    if (!o) return std::unexpected(o.error());
    out.owner = std::move(*o);
  }
  return out;
}

Result<std::optional<Owner>> read_owner(kv::KeyValueStore& store, const std::string& key) {
  auto kv = kv::get(store, key);
  if (!kv) return std::unexpected(kv.error());
  if (!kv->has_value()) return std::optional<Owner>{};
  auto o = decode_owner(**kv);
  if (!o) return std::unexpected(o.error());
  return std::optional<Owner>(std::move(*o));
}

Status release_owned_key(kv::KeyValueStore& store, const std::string& key, uint64_t fencing_token,
                         uint64_t lease_id, std::string_view what, bool should_revoke_lease) {
  kvpb::Compare c;
  c.set_key(key);
  c.set_target(kvpb::Compare::TARGET_CREATE_REVISION);
  c.set_op(kvpb::Compare::OP_EQUAL);
  c.set_number(fencing_token);
  TxnSpec spec;
  spec.compares.push_back(std::move(c));
  spec.success.push_back(op_delete(key));
  auto r = run_txn(store, std::move(spec));
  if (!r) return std::unexpected(r.error());
  // The lease only ever carried this key; revoking it is cleanup and may find it gone.
  if (should_revoke_lease) {
    auto revoked = kv::lease_revoke(store, lease_id);
    if (!revoked && revoked.error().code() != ErrorCode::kLeaseNotFound) return revoked;
  }
  if (!r->succeeded()) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("{} is not held with fencing token {} (lease expired or taken over)", what,
                                  fencing_token));
  }
  return {};
}

Status renew_owned_key(kv::KeyValueStore& store, const std::string& key, uint64_t fencing_token,
                       uint64_t lease_id, std::string_view what) {
  auto lease = kv::lease_keepalive(store, lease_id);
  if (!lease) {
    if (lease.error().code() == ErrorCode::kLeaseNotFound) {
      return make_error(ErrorCode::kNotFound,
                        fmt::format("{} was lost: its lease {} expired or was revoked", what, lease_id));
    }
    return std::unexpected(lease.error());
  }
  auto kv = kv::get(store, key);
  if (!kv) return std::unexpected(kv.error());
  if (!kv->has_value() || (*kv)->create_revision() != fencing_token) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("{} is no longer held with fencing token {}", what, fencing_token));
  }
  return {};
}

}  // namespace aspen::coord

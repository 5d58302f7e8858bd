#include "kv/key_value_store.h"

#include "kv/commands.h"

namespace aspen::kv {

Result<DeletionSeen> ChangeNotifier::wait_for_delete_then_read(std::string_view key, uint64_t after_revision,
                                                               const kvpb::RangeRequest* then_read,
                                                               uint64_t timeout_ms) {
  auto gone = wait_for_delete(key, after_revision, timeout_ms);
  if (!gone) return std::unexpected(gone.error());
  DeletionSeen seen{*gone, std::nullopt};
  if (*gone == 0 || then_read == nullptr) return seen;
  if (auto page = range_at(*then_read, *gone)) seen.read = std::move(*page);
  return seen;
}

Status result_status(const kvpb::CommandResult& r) {
  if (r.error_code() == 0) return {};
  return make_error(static_cast<ErrorCode>(r.error_code()), r.error_message());
}

Result<std::optional<kvpb::KeyValue>> get(KeyValueStore& store, std::string_view key) {
  auto r = store.range(key_range(key));
  if (!r) return std::unexpected(r.error());
  if (r->kvs_size() == 0) return std::optional<kvpb::KeyValue>{};
  return std::optional<kvpb::KeyValue>(r->kvs(0));
}

Result<std::vector<std::optional<kvpb::KeyValue>>> batch_get(KeyValueStore& store,
                                                             const std::vector<std::string>& keys) {
  std::vector<std::optional<kvpb::KeyValue>> out;
  out.reserve(keys.size());
  for (const auto& k : keys) {
    auto r = get(store, k);
    if (!r) return std::unexpected(r.error());
    out.push_back(std::move(*r));
  }
  return out;
}

Result<kvpb::CommandResult> put(KeyValueStore& store, std::string_view key, std::string_view value,
                                uint64_t lease_id) {
  kvpb::Command cmd;
  cmd.mutable_put()->set_key(std::string(key));
  cmd.mutable_put()->set_value(std::string(value));
  cmd.mutable_put()->set_lease_id(lease_id);
  return store.execute(std::move(cmd));
}

Result<kvpb::CommandResult> del(KeyValueStore& store, std::string_view key) {
  kvpb::Command cmd;
  cmd.mutable_delete_()->set_key(std::string(key));
  return store.execute(std::move(cmd));
}

Result<kvpb::CommandResult> cas(KeyValueStore& store, std::string_view key,
                                const std::optional<std::string>& expected, std::string_view new_value,
                                uint64_t lease_id) {
  kvpb::Command cmd;
  auto* c = cmd.mutable_cas();
  c->set_key(std::string(key));
  c->set_expect_absent(!expected.has_value());
  if (expected) c->set_expected_value(*expected);
  c->set_new_value(std::string(new_value));
  c->set_lease_id(lease_id);
  return store.execute(std::move(cmd));
}

Result<kvpb::CommandResult> cad(KeyValueStore& store, std::string_view key, std::string_view expected) {
  kvpb::Command cmd;
  cmd.mutable_cad()->set_key(std::string(key));
  cmd.mutable_cad()->set_expected_value(std::string(expected));
  return store.execute(std::move(cmd));
}

Result<kvpb::RangeResult> scan_prefix(KeyValueStore& store, std::string_view prefix, uint32_t limit,
                                      std::string continuation) {
  kvpb::RangeRequest req;
  req.set_start(std::string(prefix));
  req.set_is_prefix(true);
  req.set_limit(limit);
  req.set_continuation(std::move(continuation));
  return store.range(req);
}

Result<kvpb::Lease> lease_grant(KeyValueStore& store, uint64_t ttl_ms, uint64_t id) {
  kvpb::Command cmd;
  cmd.mutable_lease_grant()->set_ttl_ms(ttl_ms);
  cmd.mutable_lease_grant()->set_id(id);
  auto r = store.execute(std::move(cmd));
  if (!r) return std::unexpected(r.error());
  if (auto s = result_status(*r); !s) return std::unexpected(s.error());
  return r->lease();
}

Status lease_revoke(KeyValueStore& store, uint64_t id) {
  kvpb::Command cmd;
  cmd.mutable_lease_revoke()->set_id(id);
  auto r = store.execute(std::move(cmd));
  if (!r) return std::unexpected(r.error());
  return result_status(*r);
}

Result<kvpb::Lease> lease_keepalive(KeyValueStore& store, uint64_t id) {
  kvpb::Command cmd;
  cmd.mutable_lease_keepalive()->set_id(id);
  auto r = store.execute(std::move(cmd));
  if (!r) return std::unexpected(r.error());
  if (auto s = result_status(*r); !s) return std::unexpected(s.error());
  return r->lease();
}

}  // namespace aspen::kv

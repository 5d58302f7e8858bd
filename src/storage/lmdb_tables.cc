#include <sodium.h>

#include <algorithm>
#include <fmt/format.h>

#include "core/encoding.h"
#include "storage/lmdb_internal.h"

namespace aspen::storage {

Error lmdb_error(int rc, std::string_view what) {
  switch (rc) {
    case MDB_MAP_FULL:
      return Error(ErrorCode::kStorageFull,
                   fmt::format("{}: the data store reached its maximum size (raise the storage map "
                               "size); reads keep working",
                               what));
    case ENOSPC:
      return Error(ErrorCode::kStorageFull, fmt::format("{}: the disk is full; reads keep working", what));
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return Error(ErrorCode::kCorruption, fmt::format("{}: {}", what, mdb_strerror(rc)));
    default:
      return Error(ErrorCode::kInternal, fmt::format("{}: {}", what, mdb_strerror(rc)));
  }
}

Result<LmdbTxn> LmdbTxn::begin(MDB_env* env, bool is_read_only) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env, nullptr, is_read_only ? MDB_RDONLY : 0, &txn);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "begin transaction"));
  return LmdbTxn(txn);
}

LmdbTxn::~LmdbTxn() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
}

Status LmdbTxn::commit() {
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;  // committed or aborted by LMDB either way
  if (rc != 0) return std::unexpected(lmdb_error(rc, "commit"));
  return {};
}

std::string encode_kv_key(std::string_view key) {
  if (key.size() < kLongKeyPrefixBytes) return std::string(key);
  std::string out(key.substr(0, kLongKeyPrefixBytes));
  unsigned char digest[16];
  crypto_generichash(digest, sizeof(digest), reinterpret_cast<const unsigned char*>(key.data()),
                     key.size(), nullptr, 0);
  out.append(reinterpret_cast<const char*>(digest), sizeof(digest));
  return out;
}

bool is_long_kv_key(std::string_view encoded) { return encoded.size() >= kLongKeyPrefixBytes; }

namespace {
std::string u64_key(uint64_t v) {
  std::string out;
  put_u64_be(out, v);
  return out;
}
}  // namespace

Result<kvpb::KeyValue> LmdbTables::decode_kv(const MDB_val& k, const MDB_val& v) {
  kvpb::KeyValue kv;
  if (!kv.ParseFromArray(v.mv_data, static_cast<int>(v.mv_size))) {
    return make_error(ErrorCode::kCorruption, "a stored key-value record does not parse");
  }
  // Short keys are not repeated in the record; long keys are, since their LMDB key is lossy.
  if (!is_long_kv_key(from_val(k))) kv.set_key(std::string(from_val(k)));
  return kv;
}

Result<std::optional<kvpb::KeyValue>> LmdbTables::get(std::string_view key) {
  std::string enc = encode_kv_key(key);
  MDB_val k = to_val(enc);
  MDB_val v;
  int rc = mdb_get(txn_, dbi_.kv, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<kvpb::KeyValue>{};
  if (rc != 0) return std::unexpected(lmdb_error(rc, "read key"));
  auto kv = decode_kv(k, v);
  if (!kv) return std::unexpected(kv.error());
  if (kv->key() != key) return make_error(ErrorCode::kCorruption, "long-key digest collision");
  return std::optional<kvpb::KeyValue>(std::move(*kv));
}

Status LmdbTables::put(const kvpb::KeyValue& kv) {
  std::string enc = encode_kv_key(kv.key());
  std::string bytes;
  if (is_long_kv_key(enc)) {
    bytes = kv.SerializeAsString();
  } else {
    kvpb::KeyValue copy = kv;
    copy.clear_key();
    bytes = copy.SerializeAsString();
  }
  MDB_val k = to_val(enc);
  MDB_val v = to_val(bytes);
  int rc = mdb_put(txn_, dbi_.kv, &k, &v, 0);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "write key"));
  return {};
}

Status LmdbTables::erase(std::string_view key) {
  std::string enc = encode_kv_key(key);
  MDB_val k = to_val(enc);
  int rc = mdb_del(txn_, dbi_.kv, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "delete key"));
  return {};
}

Result<std::vector<kvpb::KeyValue>> LmdbTables::scan(std::string_view start, std::string_view end,
                                                     const std::optional<std::string>& after, size_t limit,
                                                     size_t max_bytes) {
  std::vector<kvpb::KeyValue> out;
  size_t bytes = 0;
  std::string_view from = after ? std::string_view(*after) : start;
  // Seek to the start of from's long-key group, if it has one; exact filtering is below.
  std::string seek(from.substr(0, std::min(from.size(), kLongKeyPrefixBytes)));
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn_, dbi_.kv, &cur);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
  MDB_val k = to_val(seek);
  MDB_val v;
  std::vector<kvpb::KeyValue> group;
  auto accept = [&](kvpb::KeyValue&& kv) -> bool {  // false: past the end, stop
    if (!end.empty() && kv.key() >= end) return false;
    if (kv.key() < start || (after && kv.key() <= *after)) return true;
    bytes += kv.key().size() + kv.value().size();
    out.push_back(std::move(kv));
    return out.size() < limit && bytes <= max_bytes;
  };
  auto flush_group = [&]() -> bool {
    std::sort(group.begin(), group.end(), [](const auto& a, const auto& b) { return a.key() < b.key(); });
    bool go_on = true;
    for (auto& kv : group) {
      if (!(go_on = accept(std::move(kv)))) break;
    }
    group.clear();
    return go_on;
  };
  bool go_on = limit > 0;
  // LMDB refuses an empty key: an unbounded start means the first record.
  for (rc = mdb_cursor_get(cur, &k, &v, seek.empty() ? MDB_FIRST : MDB_SET_RANGE); rc == 0 && go_on;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    auto kv = decode_kv(k, v);
    if (!kv) {
      mdb_cursor_close(cur);
      return std::unexpected(kv.error());
    }
    std::string_view enc = from_val(k);
    if (!group.empty() && (!is_long_kv_key(enc) ||
                           enc.substr(0, kLongKeyPrefixBytes) != group.front().key().substr(0, kLongKeyPrefixBytes))) {
      go_on = flush_group();
      if (!go_on) break;
    }
    if (is_long_kv_key(enc)) {
      group.push_back(std::move(*kv));
    } else {
      go_on = accept(std::move(*kv));
    }
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "scan"));
  if (go_on && !group.empty()) flush_group();
  return out;
}

Result<std::optional<kvpb::Lease>> LmdbTables::get_lease(uint64_t id) {
  std::string key = u64_key(id);
  MDB_val k = to_val(key);
  MDB_val v;
  int rc = mdb_get(txn_, dbi_.leases, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<kvpb::Lease>{};
  if (rc != 0) return std::unexpected(lmdb_error(rc, "read lease"));
  kvpb::Lease lease;
  if (!lease.ParseFromArray(v.mv_data, static_cast<int>(v.mv_size))) {
    return make_error(ErrorCode::kCorruption, "a stored lease does not parse");
  }
  return std::optional<kvpb::Lease>(std::move(lease));
}

namespace {
std::string expiry_key(uint64_t expires_at_ms, uint64_t id) { return u64_key(expires_at_ms) + u64_key(id); }
}  // namespace

Status LmdbTables::put_lease(const kvpb::Lease& lease) {
  auto old = get_lease(lease.id());
  if (!old) return std::unexpected(old.error());
  if (*old && (*old)->expires_at_ms() != lease.expires_at_ms()) {
    std::string ek = expiry_key((*old)->expires_at_ms(), lease.id());
    MDB_val k = to_val(ek);
    if (int rc = mdb_del(txn_, dbi_.lease_expiry, &k, nullptr); rc != 0 && rc != MDB_NOTFOUND) {
      return std::unexpected(lmdb_error(rc, "update lease expiry index"));
    }
  }
  std::string key = u64_key(lease.id());
  std::string bytes = lease.SerializeAsString();
  MDB_val k = to_val(key);
  MDB_val v = to_val(bytes);
  int rc = mdb_put(txn_, dbi_.leases, &k, &v, 0);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "write lease"));
  std::string ek = expiry_key(lease.expires_at_ms(), lease.id());
  MDB_val ekv = to_val(ek);
  MDB_val empty{0, nullptr};
  if (rc = mdb_put(txn_, dbi_.lease_expiry, &ekv, &empty, 0); rc != 0) {
    return std::unexpected(lmdb_error(rc, "write lease expiry index"));
  }
  return {};
}

Result<std::vector<uint64_t>> LmdbTables::expired_lease_ids(uint64_t now_ms, size_t limit) {
  std::vector<uint64_t> out;
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn_, dbi_.lease_expiry, &cur);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
  MDB_val k;
  MDB_val v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && out.size() < limit;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 16) {
      mdb_cursor_close(cur);
      return make_error(ErrorCode::kCorruption, "a lease expiry index entry has the wrong size");
    }
    const auto* p = static_cast<const uint8_t*>(k.mv_data);
    uint64_t expires = 0;
    uint64_t id = 0;
    for (int i = 0; i < 8; ++i) {
      expires = (expires << 8) | p[i];
      id = (id << 8) | p[8 + i];
    }
    if (expires > now_ms) break;
    out.push_back(id);
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "scan lease expiry index"));
  return out;
}

Status LmdbTables::erase_lease(uint64_t id) {
  auto lease = get_lease(id);
  if (!lease) return std::unexpected(lease.error());
  if (*lease) {
    std::string ek = expiry_key((*lease)->expires_at_ms(), id);
    MDB_val ekv = to_val(ek);
    if (int rc = mdb_del(txn_, dbi_.lease_expiry, &ekv, nullptr); rc != 0 && rc != MDB_NOTFOUND) {
      return std::unexpected(lmdb_error(rc, "delete lease expiry index"));
    }
  }
  auto keys = keys_of_lease(id);
  if (!keys) return std::unexpected(keys.error());
  for (const auto& key : *keys) {
    if (auto s = detach_key(id, key); !s) return s;
  }
  std::string key = u64_key(id);
  MDB_val k = to_val(key);
  int rc = mdb_del(txn_, dbi_.leases, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "delete lease"));
  return {};
}

Result<size_t> LmdbTables::lease_count() {
  MDB_stat st{};
  if (int rc = mdb_stat(txn_, dbi_.leases, &st); rc != 0) return std::unexpected(lmdb_error(rc, "count leases"));
  return static_cast<size_t>(st.ms_entries);
}

Result<std::vector<kvpb::Lease>> LmdbTables::list_leases(uint64_t after_id, size_t limit) {
  std::vector<kvpb::Lease> out;
  if (after_id == UINT64_MAX || limit == 0) return out;
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn_, dbi_.leases, &cur);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
  std::string first = u64_key(after_id + 1);  // big-endian: id order is key order
  MDB_val k{first.size(), first.data()};
  MDB_val v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && out.size() < limit;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    kvpb::Lease lease;
    if (!lease.ParseFromArray(v.mv_data, static_cast<int>(v.mv_size))) {
      mdb_cursor_close(cur);
      return make_error(ErrorCode::kCorruption, "a stored lease does not parse");
    }
    out.push_back(std::move(lease));
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "list leases"));
  return out;
}

Status LmdbTables::attach_key(uint64_t lease_id, std::string_view key) {
  std::string lk = u64_key(lease_id) + encode_kv_key(key);
  MDB_val k = to_val(lk);
  MDB_val v = to_val(key);  // the full key: the encoded one may be lossy
  int rc = mdb_put(txn_, dbi_.lease_keys, &k, &v, 0);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "attach key to lease"));
  return {};
}

Status LmdbTables::detach_key(uint64_t lease_id, std::string_view key) {
  std::string lk = u64_key(lease_id) + encode_kv_key(key);
  MDB_val k = to_val(lk);
  int rc = mdb_del(txn_, dbi_.lease_keys, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "detach key from lease"));
  return {};
}

Result<std::vector<std::string>> LmdbTables::keys_of_lease(uint64_t lease_id) {
  std::vector<std::string> out;
  std::string prefix = u64_key(lease_id);
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn_, dbi_.lease_keys, &cur);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
  MDB_val k = to_val(prefix);
  MDB_val v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (!from_val(k).starts_with(prefix)) break;
    out.emplace_back(from_val(v));
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "list lease keys"));
  return out;
}

Status LmdbTables::for_each_kv(const std::function<Status(const kvpb::KeyValue&)>& fn) {
  // Page through the table so memory stays bounded however large it is.
  constexpr size_t kPage = 4096;
  constexpr size_t kPageBytes = size_t{16} << 20;
  std::optional<std::string> after;
  while (true) {
    auto page = scan("", "", after, kPage, kPageBytes);
    if (!page) return std::unexpected(page.error());
    if (page->empty()) return {};
    for (const auto& kv : *page) {
      if (auto s = fn(kv); !s) return s;
    }
    after = page->back().key();
  }
}

Status LmdbTables::for_each_lease_key(const std::function<Status(uint64_t, std::string_view)>& fn) {
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn_, dbi_.lease_keys, &cur);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "open cursor"));
  MDB_val k;
  MDB_val v;
  Status result;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    Decoder d(from_val(k));
    auto id = d.get_u64_be();
    if (!id) {
      result = std::unexpected(id.error());
      break;
    }
    if (result = fn(*id, from_val(v)); !result) break;
  }
  mdb_cursor_close(cur);
  if (!result) return result;
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "scan lease keys"));
  return {};
}

}  // namespace aspen::storage

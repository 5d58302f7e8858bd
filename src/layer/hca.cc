#include "layer/hca.h"

#include <fmt/format.h>

#include "core/assert.h"
#include "core/limits.h"
#include "layer/kv_ops.h"

namespace aspen::layer {

namespace {

std::string encode_count(uint64_t n) {
  std::string s(8, '\0');
  for (size_t i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

Result<uint64_t> decode_count(const std::string& s) {
  if (s.size() != 8) return make_error(ErrorCode::kCorruption, "allocator counter is not 8 bytes");
  uint64_t n = 0;
  for (size_t i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(s[i])) << (8 * i);
  return n;
}

struct Window {
  uint64_t start = 0;
  uint64_t count = 0;
  uint64_t mod_revision = 0;     // of the counter key; 0 = absent
  uint64_t create_revision = 0;
  std::string key;
};

// The latest window: the counter with the largest start (normally the only one).
Result<Window> read_window(kv::KeyValueStore& store, const Subspace& counters) {
  Window w;
  w.key = counters.pack({Integer{}});
  KeyRange r = counters.range();
  Status error;
  auto s = scan_range(store, r.begin, r.end, 100, [&](const kvpb::KeyValue& kv) {
    auto t = counters.unpack(kv.key());
    auto count = decode_count(kv.value());
    if (!t || t->size() != 1 || !(*t)[0].holds<Integer>() || (*t)[0].get<Integer>().is_negative || !count) {
      error = make_error(ErrorCode::kCorruption, "allocator counter key or value is malformed");
      return false;
    }
    w.start = (*t)[0].get<Integer>().magnitude;
    w.count = *count;
    w.mod_revision = kv.mod_revision();
    w.create_revision = kv.create_revision();
    w.key = kv.key();
    return true;
  });
  if (!s) return std::unexpected(s.error());
  if (!error) return std::unexpected(error.error());
  return w;
}

}  // namespace

uint64_t hca_window_size(uint64_t start) {
  if (start < 255) return 64;
  if (start < 65535) return 1024;
  return 8192;
}

Result<uint64_t> hca_allocate(kv::KeyValueStore& store, const Subspace& hca,
                              const std::function<uint64_t(uint64_t)>& random) {
  Subspace counters = hca.sub({0});
  Subspace recent = hca.sub({1});
  for (size_t attempt = 0; attempt < limits::kMaxAllocatorRounds; ++attempt) {
    auto w = read_window(store, counters);
    if (!w) return std::unexpected(w.error());
    uint64_t size = hca_window_size(w->start);
    if (w->count * 2 >= size) {
      // Half full: advance. One transaction retires the old counter and starts the next.
      uint64_t next = w->start + size;
      std::string next_key = counters.pack({Integer::of_unsigned(next)});
      Txn txn;
      txn.compares.push_back(cmp_mod_revision(w->key, w->mod_revision));
      txn.compares.push_back(cmp_mod_revision(next_key, 0));
      txn.success.push_back(op_delete(w->key));
      txn.success.push_back(op_put(next_key, encode_count(0)));
      auto r = run_txn(store, std::move(txn));
      if (!r) return std::unexpected(r.error());
      if (r->succeeded()) {
        // Claims below the new start can never succeed again (their counter is gone); their
        // keys are only space. Best effort: a failure here leaves garbage, not a conflict.
        KeyRange old = recent.range();
        (void)delete_range(store, old.begin, recent.pack({Integer::of_unsigned(next)}));
      }
      continue;
    }
    // Count this allocation in the window (the counter's CAS orders the allocators).
    Txn inc;
    inc.compares.push_back(cmp_mod_revision(w->key, w->mod_revision));
    inc.success.push_back(op_put(w->key, encode_count(w->count + 1)));
    auto r = run_txn(store, std::move(inc));
    if (!r) return std::unexpected(r.error());
    if (!r->succeeded()) continue;
    uint64_t counter_created = w->create_revision != 0 ? w->create_revision : r->revision();
    for (size_t claim = 0; claim < limits::kMaxAllocatorClaimsPerWindow; ++claim) {
      uint64_t candidate = w->start + random(size);
      std::string key = recent.pack({Integer::of_unsigned(candidate)});
      Txn txn;
      txn.compares.push_back(cmp_mod_revision(key, 0));
      txn.compares.push_back(cmp_create_revision(w->key, counter_created));
      txn.success.push_back(op_put(key, ""));
      txn.failure.push_back(op_get(w->key));
      auto c = run_txn(store, std::move(txn));
      if (!c) return std::unexpected(c.error());
      if (c->succeeded()) return candidate;
      const auto& got = c->responses(0).range();
      bool is_window_current = got.kvs_size() == 1 && got.kvs(0).create_revision() == counter_created;
      if (!is_window_current) break;  // the window moved on: start over
    }
  }
  return make_error(ErrorCode::kUnavailable, "prefix allocator: too much contention, gave up");
}

}  // namespace aspen::layer

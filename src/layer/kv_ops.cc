#include "layer/kv_ops.h"

#include "core/assert.h"
#include "core/limits.h"

namespace aspen::layer {

namespace {
kvpb::Compare compare_number(std::string_view key, kvpb::Compare::Target target, uint64_t n) {
  kvpb::Compare c;
  c.set_key(std::string(key));
  c.set_target(target);
  c.set_op(kvpb::Compare::OP_EQUAL);
  c.set_number(n);
  return c;
}
}  // namespace

kvpb::Compare cmp_mod_revision(std::string_view key, uint64_t mod_revision) {
  return compare_number(key, kvpb::Compare::TARGET_MOD_REVISION, mod_revision);
}

kvpb::Compare cmp_create_revision(std::string_view key, uint64_t create_revision) {
  return compare_number(key, kvpb::Compare::TARGET_CREATE_REVISION, create_revision);
}

kvpb::TxnOp op_put(std::string_view key, std::string_view value) {
  kvpb::TxnOp op;
  op.mutable_put()->set_key(std::string(key));
  op.mutable_put()->set_value(std::string(value));
  return op;
}

kvpb::TxnOp op_delete(std::string_view key) {
  kvpb::TxnOp op;
  op.mutable_delete_()->set_key(std::string(key));
  return op;
}

kvpb::TxnOp op_get(std::string_view key) {
  kvpb::TxnOp op;
  op.mutable_range()->set_start(std::string(key));
  op.mutable_range()->set_end(std::string(key) + '\0');
  op.mutable_range()->set_limit(1);
  return op;
}

Result<kvpb::CommandResult> run_txn(kv::KeyValueStore& store, Txn txn) {
  kvpb::Command cmd;
  auto* t = cmd.mutable_txn();
  for (auto& c : txn.compares) *t->add_compares() = std::move(c);
  for (auto& op : txn.success) *t->add_success() = std::move(op);
  for (auto& op : txn.failure) *t->add_failure() = std::move(op);
  auto r = store.execute(std::move(cmd));
  if (!r) return std::unexpected(r.error());
  if (auto s = kv::result_status(*r); !s) return std::unexpected(s.error());
  return r;
}

Status scan_range(kv::KeyValueStore& store, std::string_view begin, std::string_view end, uint32_t page_limit,
                  const std::function<bool(const kvpb::KeyValue&)>& visit) {
  ASPEN_ASSERT(page_limit > 0 && page_limit <= limits::kMaxScanResults);
  kvpb::RangeRequest req;
  req.set_start(std::string(begin));
  req.set_end(std::string(end));
  req.set_limit(page_limit);
  for (;;) {
    auto page = store.range(req);
    if (!page) return std::unexpected(page.error());
    for (const auto& kv : page->kvs()) {
      if (!visit(kv)) return {};
    }
    if (!page->has_more()) return {};
    req.set_continuation(page->continuation());
  }
}

Status delete_range(kv::KeyValueStore& store, std::string_view begin, std::string_view end) {
  for (;;) {
    std::vector<std::string> keys;
    auto s = scan_range(store, begin, end, static_cast<uint32_t>(limits::kMaxBatchSize), [&](const kvpb::KeyValue& kv) {
      keys.push_back(kv.key());
      return keys.size() < limits::kMaxBatchSize;
    });
    if (!s) return s;
    if (keys.empty()) return {};
    kvpb::Command cmd;
    for (auto& k : keys) cmd.mutable_delete_multi()->add_keys(std::move(k));
    auto r = store.execute(std::move(cmd));
    if (!r) return std::unexpected(r.error());
    if (auto st = kv::result_status(*r); !st) return st;
  }
}

}  // namespace aspen::layer

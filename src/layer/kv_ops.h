// Small helpers the layers share over kv::KeyValueStore: transaction builders (compares and
// ops), running a transaction, and reading a key range page by page.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "aspen/kv.pb.h"
#include "core/error.h"
#include "kv/key_value_store.h"

namespace aspen::layer {

kvpb::Compare cmp_mod_revision(std::string_view key, uint64_t mod_revision);        // 0 = absent
kvpb::Compare cmp_create_revision(std::string_view key, uint64_t create_revision);  // 0 = absent
kvpb::TxnOp op_put(std::string_view key, std::string_view value);
kvpb::TxnOp op_delete(std::string_view key);
kvpb::TxnOp op_get(std::string_view key);

struct Txn {
  std::vector<kvpb::Compare> compares;
  std::vector<kvpb::TxnOp> success;
  std::vector<kvpb::TxnOp> failure;
};
// Runs the transaction; an apply-time refusal becomes an Error. succeeded() says whether
// the compares held.
Result<kvpb::CommandResult> run_txn(kv::KeyValueStore& store, Txn txn);

// Reads [begin, end) (end "" = to the end of the key space) in pages of page_limit keys,
// calling visit for each key in order; visit returns false to stop. Each page is its own
// linearizable read (no snapshot across pages).
Status scan_range(kv::KeyValueStore& store, std::string_view begin, std::string_view end, uint32_t page_limit,
                  const std::function<bool(const kvpb::KeyValue&)>& visit);

// Deletes every key in [begin, end) in batches of at most kMaxBatchSize (not atomic).
Status delete_range(kv::KeyValueStore& store, std::string_view begin, std::string_view end);

}  // namespace aspen::layer

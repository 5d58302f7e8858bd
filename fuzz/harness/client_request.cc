// client_request: client requests decoded from bytes and executed the way a node executes
// them, against the replicated state machine: writes through apply_command (validation,
// sessions, transactions, leases), reads and scans through read_range. Records: each is one
// clientpb::Request; the tag is the leader time step. State carries across the records of
// one input. Properties: no assert fires, every answer fits a frame, a refused write changes
// nothing (the store's revision of its keys is untouched is not checked here; the unit tests
// do), what is stored respects the key and value limits, and a write that a token granting
// only full:k authorizes (node/request_auth.h) changes no key outside k (lease revocation
// aside: it deletes whatever was attached to the lease, by design; and the cluster's own
// session records).
#include <map>

#include "aspen/client.pb.h"
#include "auth/capability.h"
#include "core/limits.h"
#include "fuzz/harness/harness.h"
#include "kv/commands.h"
#include "kv/mem_tables.h"
#include "kv/state_machine.h"
#include "node/request_auth.h"
#include "watch/watch.h"

namespace aspen::fuzz {

namespace {

void check_answer_fits(const google::protobuf::Message& m) {
  check(m.ByteSizeLong() <= limits::kMaxFrameSizeBytes, "an answer larger than a frame");
}

std::map<std::string, uint64_t> mod_revisions(kv::MemKvTables& tables) {
  kvpb::RangeRequest all;
  all.set_limit(limits::kMaxScanResults);
  std::map<std::string, uint64_t> out;
  if (auto r = kv::read_range(tables, all)) {
    for (const auto& kv : r->kvs()) out[kv.key()] = kv.mod_revision();
  }
  return out;
}

}  // namespace

int client_request_one_input(const uint8_t* data, size_t size) {
  kv::MemKvTables tables;
  Index revision = 0;
  uint64_t now_ms = 1'000'000;
  auto apply = [&](kvpb::Command cmd) {
    cmd.set_timestamp_ms(now_ms);
    auto r = kv::apply_command(tables, cmd, ++revision);
    check(r.has_value(), "apply failed on an in-memory store");
    check_answer_fits(*r);
    // A repeat in a client session is answered with its first answer, an earlier revision.
    check(r->revision() > 0 && r->revision() <= revision, "an answer with a revision not yet reached");
  };
  for (int i = 0; i < 4; ++i) {  // a few keys to read, compare and delete
    kvpb::Command c;
    c.mutable_put()->set_key("k" + std::to_string(i));
    c.mutable_put()->set_value(std::string(static_cast<size_t>(i) * 100, 'v'));
    apply(c);
  }
  for (const auto& rec : split_records(data, size, 16)) {
    clientpb::Request req;
    if (!req.ParseFromArray(rec.bytes.data(), static_cast<int>(rec.bytes.size()))) continue;
    now_ms += rec.tag * 1000ull;
    switch (req.op_case()) {
      case clientpb::Request::kWrite: {
        static const auth::VerifiedToken scoped = [] {
          auth::VerifiedToken t;
          t.capabilities = {{auth::Action::kFull, "k"}};
          t.depth = 1;
          return t;
        }();
        const bool is_authorized = node::authorize_request(req, scoped).has_value() &&
                                   !req.write().command().has_lease_revoke() &&
                                   !req.write().command().has_lease_expire();  // refused before auth in a node
        const auto before = is_authorized ? mod_revisions(tables) : std::map<std::string, uint64_t>{};
        apply(req.write().command());
        if (is_authorized) {
          const auto after = mod_revisions(tables);
          for (const auto* side : {&before, &after}) {
            for (const auto& [key, rev] : *side) {
              const auto& other = side == &before ? after : before;
              auto it = other.find(key);
              // The cluster's own bookkeeping (client session records) is not the caller's doing.
              if ((it == other.end() || it->second != rev) && !key.starts_with("__aspen/")) {
                check(key.starts_with("k"), "a write authorized for prefix k changed a key outside it");
              }
            }
          }
        }
        break;
      }
      case clientpb::Request::kRead: {
        auto r = kv::read_range(tables, kv::key_range(req.read().key()));
        if (r) check_answer_fits(*r);
        break;
      }
      case clientpb::Request::kScan: {
        auto r = kv::read_range(tables, req.scan().range());
        if (r) {
          check_answer_fits(*r);
          check(r->kvs_size() <= static_cast<int>(limits::kMaxScanResults), "a page over the scan limit");
        }
        break;
      }
      case clientpb::Request::kWatchCreate: {
        // A one-shot watch's read: validated like a scan, its page fits a frame, and told
        // from the page with no changes laid over it, it is that page.
        auto spec = watch::make_watch_spec(req.watch_create());
        if (!spec || !spec->then_read) break;
        check(spec->is_once && spec->once_timeout_ms >= 1 && spec->once_timeout_ms <= limits::kMaxWatchOnceTimeoutMs,
              "a read on a watch that is not a bounded one-shot");
        check(spec->then_read->revision() == 0, "a one-shot read with a revision of its own");
        auto page = kv::read_range(tables, *spec->then_read);
        if (!page) break;
        check_answer_fits(*page);
        if (page->has_more() || spec->then_read->is_count_only() || !spec->then_read->continuation().empty()) break;
        auto told = watch::range_with_changes(*spec->then_read, *page, {}, page->revision());
        check(told.has_value() && told->kvs_size() == page->kvs_size(), "an unchanged page told differently");
        break;
      }
      default:
        break;
    }
  }
  kvpb::RangeRequest all;
  all.set_limit(limits::kMaxScanResults);
  auto everything = kv::read_range(tables, all);
  check(everything.has_value(), "the store cannot be scanned");
  for (const auto& kv : everything->kvs()) {
    check(kv.key().size() <= limits::kMaxKeySizeBytes || kv.key().starts_with("__aspen/"), "a stored key over the limit");
    check(kv.value().size() <= limits::kMaxValueSizeBytes, "a stored value over the limit");
  }
  return 0;
}

std::vector<std::string> client_request_seeds() {
  std::vector<std::string> out;
  auto write = [](kvpb::Command c) {
    clientpb::Request r;
    *r.mutable_write()->mutable_command() = std::move(c);
    return r.SerializeAsString();
  };
  {
    std::string s;
    kvpb::Command put;
    put.mutable_put()->set_key("a");
    put.mutable_put()->set_value("1");
    put.mutable_session()->set_client_id(7);
    put.mutable_session()->set_sequence(1);
    put.mutable_session()->set_first_incomplete(1);
    append_record(s, 0, write(put));
    append_record(s, 1, write(put));
    clientpb::Request scan;
    scan.mutable_scan()->mutable_range()->set_start("k");
    scan.mutable_scan()->mutable_range()->set_is_prefix(true);
    scan.mutable_scan()->mutable_range()->set_limit(2);
    append_record(s, 0, scan.SerializeAsString());
    clientpb::Request once;  // a lock waiter's wait with its queue read
    once.mutable_watch_create()->set_start("k1");
    once.mutable_watch_create()->set_is_no_put(true);
    once.mutable_watch_create()->set_is_once(true);
    once.mutable_watch_create()->set_once_timeout_ms(3000);
    once.mutable_watch_create()->mutable_then_read()->set_start("k");
    once.mutable_watch_create()->mutable_then_read()->set_is_prefix(true);
    append_record(s, 0, once.SerializeAsString());
    out.push_back(s);
  }
  {
    std::string s;
    kvpb::Command txn;
    auto* cmp = txn.mutable_txn()->add_compares();
    cmp->set_key("k1");
    cmp->set_target(kvpb::Compare::TARGET_VERSION);
    cmp->set_op(kvpb::Compare::OP_EQUAL);
    cmp->set_number(1);
    txn.mutable_txn()->add_success()->mutable_delete_()->set_key("k2");
    txn.mutable_txn()->add_failure()->mutable_range()->set_start("k");
    append_record(s, 0, write(txn));
    kvpb::Command grant;
    grant.mutable_lease_grant()->set_ttl_ms(2000);
    append_record(s, 0, write(grant));
    kvpb::Command leased;
    leased.mutable_put()->set_key("l");
    leased.mutable_put()->set_lease_id(9);
    append_record(s, 5, write(leased));
    kvpb::Command cas;
    cas.mutable_cas()->set_key("k3");
    cas.mutable_cas()->set_expected_value(std::string(300, 'v'));
    cas.mutable_cas()->set_new_value("n");
    append_record(s, 0, write(cas));
    out.push_back(s);
  }
  return out;
}

}  // namespace aspen::fuzz

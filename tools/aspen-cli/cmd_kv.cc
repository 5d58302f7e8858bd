// aspen-cli kv ...: reads and writes of the key-value store.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli.h"
#include "core/limits.h"
#include "kv/commands.h"
#include "kv/key_value_store.h"
#include "txn_parse.h"

namespace aspen::cli {

namespace {

namespace cpb = clientpb;

// Prints bytes for a human; a binary value gets a note on stderr so stdout stays the value.
void print_value_line(std::string_view bytes) {
  bool is_hex = false;
  std::cout << display_bytes(bytes, &is_hex) << "\n";
  if (is_hex) std::cerr << "(value is not valid UTF-8; shown as hex)\n";
}

Result<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return make_error(ErrorCode::kInvalidArgument, "hex token has an odd length");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (size_t k = 0; k < 2; ++k) {
      const char c = hex[i + k];
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) return make_error(ErrorCode::kInvalidArgument, "hex token has a non-hex character");
      v = v * 16 + d;
    }
    out.push_back(static_cast<char>(v));
  }
  return out;
}

// The CAS/CAD failure detail: what the key holds now.
std::string describe_current(const kvpb::CommandResult& r) {
  if (r.current().key().empty()) return "the key is absent";
  return fmt::format("current value is {} (mod revision {}, version {})", display_bytes(r.current().value()),
                     r.current().mod_revision(), r.current().version());
}

struct GetArgs {
  std::string key;
  bool is_stale = false;
  uint64_t node_id = 0;
};

int run_get(const Context& ctx, const GetArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = c.read(a.key, a.is_stale ? cpb::CONSISTENCY_STALE : cpb::CONSISTENCY_LINEARIZABLE,
                    client::Target{a.node_id});
    if (!r) return fail(ctx, r.error());
    if (!r->has_value()) {
      if (ctx.is_json) {
        print_json_ok({{"found", false}});
      } else {
        std::cerr << "key not found\n";
      }
      return kExitFailed;
    }
    if (ctx.is_json) {
      print_json_ok({{"found", true}, {"kv", kv_json(**r)}});
    } else {
      print_value_line((*r)->value());
    }
    return kExitOk;
  });
}

struct SetArgs {
  std::string key;
  std::string value;
  uint64_t lease_id = 0;
};

int run_set(const Context& ctx, const SetArgs& a) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = kv::put(c, a.key, a.value, a.lease_id);
    if (!r) return fail(ctx, r.error());
    if (auto s = kv::result_status(*r); !s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"revision", r->revision()}});
    } else {
      std::cout << "OK (revision " << r->revision() << ")\n";
    }
    return kExitOk;
  });
}

int run_delete(const Context& ctx, const std::string& key) {
  return with_client(ctx, [&](client::Client& c) {
    auto r = kv::del(c, key);
    if (!r) return fail(ctx, r.error());
    if (auto s = kv::result_status(*r); !s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"deleted", r->deleted()}, {"revision", r->revision()}});
    } else if (r->deleted() == 0) {
      std::cout << "key not found; nothing deleted\n";
    } else {
      std::cout << "deleted " << r->deleted() << " key (revision " << r->revision() << ")\n";
    }
    return kExitOk;
  });
}

struct ScanArgs {
  std::string prefix;
  uint32_t limit = 0;
  bool should_follow = false;
  bool is_keys_only = false;
  bool is_stale = false;
  std::string continuation_hex;
};

int run_scan(const Context& ctx, const ScanArgs& a) {
  kvpb::RangeRequest range;
  range.set_start(a.prefix);
  range.set_is_prefix(true);
  range.set_limit(a.limit);
  if (!a.continuation_hex.empty()) {
    auto token = hex_decode(a.continuation_hex);
    if (!token) return usage_error(ctx, "--continuation: " + token.error().message());
    range.set_continuation(*token);
  }
  return with_client(ctx, [&](client::Client& c) {
    nlohmann::json kvs = nlohmann::json::array();
    uint64_t total = 0;
    while (true) {
      auto r = c.scan(range, a.is_stale ? cpb::CONSISTENCY_STALE : cpb::CONSISTENCY_LINEARIZABLE);
      if (!r) return fail(ctx, r.error());
      for (const auto& kv : r->kvs()) {
        ++total;
        if (ctx.is_json) {
          nlohmann::json j = kv_json(kv);
          if (a.is_keys_only) {
            j.erase("value");
            j.erase("value_encoding");
          }
          kvs.push_back(std::move(j));
        } else if (a.is_keys_only) {
          std::cout << display_bytes(kv.key()) << "\n";
        } else {
          std::cout << display_bytes(kv.key()) << "\t" << display_bytes(kv.value()) << "\n";
        }
      }
      const bool is_done = !r->has_more() || r->continuation().empty();
      if (is_done || !a.should_follow) {
        if (ctx.is_json) {
          nlohmann::json out = {{"kvs", std::move(kvs)}, {"count", total}, {"has_more", !is_done}};
          if (!is_done) out["continuation"] = to_hex(r->continuation());
          print_json_ok(std::move(out));
        } else if (!is_done) {
          std::cerr << "(more keys: repeat with --all, or with --continuation " << to_hex(r->continuation())
                    << ")\n";
        }
        return kExitOk;
      }
      range.set_continuation(r->continuation());
    }
  });
}

struct CasArgs {
  std::string key;
  std::string new_value;
  std::string expected_value;
  bool has_expected = false;
  bool should_be_absent = false;
  uint64_t lease_id = 0;
};

int run_cas(const Context& ctx, const CasArgs& a) {
  if (a.has_expected == a.should_be_absent) {
    return usage_error(ctx, "kv cas needs exactly one of --expected VALUE or --absent");
  }
  return with_client(ctx, [&](client::Client& c) {
    const std::optional<std::string> expected =
        a.has_expected ? std::optional<std::string>(a.expected_value) : std::nullopt;
    auto r = kv::cas(c, a.key, expected, a.new_value, a.lease_id);
    if (!r) return fail(ctx, r.error());
    if (auto s = kv::result_status(*r); !s) return fail(ctx, s.error());
    if (ctx.is_json) {
      nlohmann::json out = {{"succeeded", r->succeeded()}, {"revision", r->revision()}};
      if (!r->succeeded()) {
        out["current"] = r->current().key().empty() ? nlohmann::json(nullptr) : kv_json(r->current());
      }
      print_json_ok(std::move(out));
    } else if (r->succeeded()) {
      std::cout << "OK (revision " << r->revision() << ")\n";
    } else {
      std::cout << "condition failed: " << describe_current(*r) << "\n";
    }
    return r->succeeded() ? kExitOk : kExitFailed;
  });
}

nlohmann::json txn_result_json(const kvpb::TxnOpResult& r) {
  switch (r.result_case()) {
    case kvpb::TxnOpResult::kPut:
      return {{"put", r.put()}};
    case kvpb::TxnOpResult::kDeleted:
      return {{"deleted", r.deleted()}};
    case kvpb::TxnOpResult::kRange: {
      nlohmann::json kvs = nlohmann::json::array();
      for (const auto& kv : r.range().kvs()) kvs.push_back(kv_json(kv));
      return {{"range", {{"kvs", std::move(kvs)}, {"has_more", r.range().has_more()}}}};
    }
    case kvpb::TxnOpResult::RESULT_NOT_SET:
      break;
  }
  return nlohmann::json::object();
}

void print_txn_result_human(size_t index, const kvpb::TxnOpResult& r) {
  switch (r.result_case()) {
    case kvpb::TxnOpResult::kPut:
      std::cout << "  [" << index << "] put: OK\n";
      break;
    case kvpb::TxnOpResult::kDeleted:
      std::cout << "  [" << index << "] delete: " << r.deleted() << " deleted\n";
      break;
    case kvpb::TxnOpResult::kRange:
      std::cout << "  [" << index << "] read: " << r.range().kvs_size() << " key(s)\n";
      for (const auto& kv : r.range().kvs()) {
        std::cout << "      " << display_bytes(kv.key()) << "\t" << display_bytes(kv.value()) << "\n";
      }
      break;
    case kvpb::TxnOpResult::RESULT_NOT_SET:
      std::cout << "  [" << index << "] (no result)\n";
      break;
  }
}

int run_txn(const Context& ctx, const std::string& file) {
  std::string text;
  if (file.empty() || file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) return usage_error(ctx, fmt::format("cannot read {}", file));
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto txn = parse_txn_json(text);
  if (!txn) return usage_error(ctx, txn.error().message());
  return with_client(ctx, [&](client::Client& c) {
    kvpb::Command cmd;
    *cmd.mutable_txn() = std::move(*txn);
    auto r = c.execute(std::move(cmd));
    if (!r) return fail(ctx, r.error());
    if (auto s = kv::result_status(*r); !s) return fail(ctx, s.error());
    if (ctx.is_json) {
      nlohmann::json results = nlohmann::json::array();
      for (const auto& op : r->responses()) results.push_back(txn_result_json(op));
      print_json_ok({{"succeeded", r->succeeded()}, {"revision", r->revision()}, {"results", std::move(results)}});
    } else {
      std::cout << (r->succeeded() ? "compares held: ran success ops" : "compares failed: ran failure ops")
                << " (revision " << r->revision() << ")\n";
      for (int i = 0; i < r->responses_size(); ++i) print_txn_result_human(static_cast<size_t>(i), r->responses(i));
    }
    return r->succeeded() ? kExitOk : kExitFailed;
  });
}

}  // namespace

void add_kv_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* kv = app.add_subcommand("kv", "Read and write keys in the replicated key-value store");
  kv->require_subcommand(1);

  auto get_args = std::make_shared<GetArgs>();
  auto* get = kv->add_subcommand("get", "Print the value of a key (exit 1 if the key does not exist)");
  get->add_option("key", get_args->key, "The key")->required();
  get->add_flag("--stale", get_args->is_stale,
                "Read from any node without confirming leadership: faster, but may miss recent writes");
  get->add_option("--node", get_args->node_id, "Read from this node id (with --stale: that node's own state)");
  get->footer(
      "Reads are linearizable by default: they see every write acknowledged before they began.\n"
      "The value is printed alone on stdout; a value that is not UTF-8 is printed as hex (0x...).\n"
      "Example:\n  aspen-cli kv get config/db-url");
  get->callback([&ctx, &action, get_args] { action = [&ctx, get_args] { return run_get(ctx, *get_args); }; });

  auto set_args = std::make_shared<SetArgs>();
  auto* set = kv->add_subcommand("set", "Set a key to a value (creates or overwrites it)");
  set->add_option("key", set_args->key, "The key (at most 1024 bytes)")->required();
  set->add_option("value", set_args->value, "The value (at most 1 MiB)")->required();
  set->add_option("--lease", set_args->lease_id, "Attach the key to this lease: it is deleted when the lease ends");
  set->footer(
      "Prints the revision of the write. If the command times out (exit 3) the write may or may\n"
      "not have been applied; read the key to find out.\n"
      "Example:\n  aspen-cli kv set config/db-url postgres://db:5432/app");
  set->callback([&ctx, &action, set_args] { action = [&ctx, set_args] { return run_set(ctx, *set_args); }; });

  auto del_key = std::make_shared<std::string>();
  auto* del = kv->add_subcommand("delete", "Delete a key");
  del->add_option("key", *del_key, "The key")->required();
  del->footer("Deleting a key that does not exist succeeds and reports that nothing was deleted.\n"
              "Example:\n  aspen-cli kv delete config/db-url");
  del->callback([&ctx, &action, del_key] { action = [&ctx, del_key] { return run_delete(ctx, *del_key); }; });

  auto scan_args = std::make_shared<ScanArgs>();
  auto* scan = kv->add_subcommand("scan", "List keys (and values) that start with a prefix, in key order");
  scan->add_option("prefix", scan_args->prefix, "Only keys starting with this (default: every key)");
  scan->add_option("--limit", scan_args->limit,
                   fmt::format("Keys per page (default {}, at most {})", limits::kDefaultScanLimit,
                               limits::kMaxScanResults));
  scan->add_flag("--all", scan_args->should_follow, "Keep fetching pages until every matching key is listed");
  scan->add_flag("--keys-only", scan_args->is_keys_only, "Print keys without values");
  scan->add_flag("--stale", scan_args->is_stale, "Read from any node; may miss recent writes");
  scan->add_option("--continuation", scan_args->continuation_hex,
                   "Resume after the previous page (the hex token a previous scan printed)");
  scan->footer(
      "Output: one 'key<TAB>value' line per key. Without --all, one page is printed and, when more\n"
      "keys remain, a note on stderr gives the token to continue with.\n"
      "Example:\n  aspen-cli kv scan services/ --all --keys-only");
  scan->callback([&ctx, &action, scan_args] { action = [&ctx, scan_args] { return run_scan(ctx, *scan_args); }; });

  auto cas_args = std::make_shared<CasArgs>();
  auto* cas = kv->add_subcommand("cas", "Compare-and-swap: set a key only if it currently holds an expected value");
  cas->add_option("key", cas_args->key, "The key")->required();
  cas->add_option("new", cas_args->new_value, "The value to write if the condition holds")->required();
  auto* expected = cas->add_option("--expected", cas_args->expected_value, "Write only if the key holds exactly this value");
  auto* absent = cas->add_flag("--absent", cas_args->should_be_absent, "Write only if the key does not exist");
  expected->excludes(absent);
  cas->add_option("--lease", cas_args->lease_id, "Attach the written key to this lease");
  cas->footer(
      "Exit 0 if the value was written, 1 if the condition did not hold (the current value is\n"
      "then printed). Exactly one of --expected or --absent is required.\n"
      "Examples:\n  aspen-cli kv cas lock/db worker-7 --absent\n"
      "  aspen-cli kv cas config/mode blue --expected green");
  cas->callback([&ctx, &action, cas_args, expected] {
    cas_args->has_expected = expected->count() > 0;
    action = [&ctx, cas_args] { return run_cas(ctx, *cas_args); };
  });

  auto txn_file = std::make_shared<std::string>();
  auto* txn = kv->add_subcommand("txn", "Run an atomic transaction: compares, then one of two lists of operations");
  txn->add_option("--file", *txn_file, "Read the transaction from this file instead of stdin ('-' = stdin)");
  txn->footer(std::string(kTxnHelp) +
              "\nExit 0 if the compares held (success ops ran), 1 if not (failure ops ran).");
  txn->callback([&ctx, &action, txn_file] { action = [&ctx, txn_file] { return run_txn(ctx, *txn_file); }; });
}

}  // namespace aspen::cli

// aspen-cli kv scan|txn: reads of many keys, and atomic transactions.
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <iterator>

#include "cmd_kv.h"
#include "completion.h"
#include "core/encoding.h"
#include "core/limits.h"
#include "kv/commands.h"
#include "payload.h"
#include "txn_parse.h"

namespace aspen::cli {

namespace {

namespace cpb = clientpb;

struct ScanArgs {
  std::string prefix;
  bool is_key_hex = false;
  uint32_t limit = 0;
  bool should_follow = false;
  bool is_keys_only = false;
  bool is_stale = false;
  std::string continuation_hex;
  uint64_t revision = 0;
};

// A key in human scan output: hex with --key-hex, else the text, or "0x" + hex when it is
// not UTF-8 (noted in `has_hex_key`, since a text key starting with "0x" looks the same).
std::string scan_key_text(std::string_view key, bool is_key_hex, bool& has_hex_key) {
  if (is_key_hex) return to_hex(key);
  bool is_hex = false;
  std::string text = display_bytes(key, &is_hex);
  has_hex_key = has_hex_key || is_hex;
  return text;
}

// Prints one page as lines, or appends it to `kvs` with --json.
void print_scan_page(const Context& ctx, const ScanArgs& a, const kvpb::RangeResult& page, nlohmann::json& kvs,
                     bool& has_hex_key) {
  for (const auto& kv : page.kvs()) {
    if (ctx.is_json) {
      nlohmann::json j = kv_json(kv);
      if (a.is_keys_only) {
        j.erase("value");
        j.erase("value_encoding");
      }
      kvs.push_back(std::move(j));
    } else if (a.is_keys_only) {
      std::cout << scan_key_text(kv.key(), a.is_key_hex, has_hex_key) << "\n";
    } else {
      std::cout << scan_key_text(kv.key(), a.is_key_hex, has_hex_key) << "\t" << display_bytes(kv.value()) << "\n";
    }
  }
}

int run_scan(const Context& ctx, const ScanArgs& a) {
  auto prefix = key_from_arg(a.prefix, a.is_key_hex);
  if (!prefix) return usage_error(ctx, prefix.error().message());
  kvpb::RangeRequest range;
  range.set_start(*prefix);
  range.set_is_prefix(true);
  range.set_limit(a.limit);
  range.set_revision(a.revision);
  if (!a.continuation_hex.empty()) {
    auto token = from_hex(a.continuation_hex);
    if (!token) return usage_error(ctx, "--continuation: the token " + token.error().message());
    range.set_continuation(*token);
  }
  return with_client(ctx, [&](client::Client& c) {
    nlohmann::json kvs = nlohmann::json::array();
    uint64_t total = 0;
    bool has_hex_key = false;
    while (true) {
      auto r = c.scan(range, a.is_stale ? cpb::CONSISTENCY_STALE : cpb::CONSISTENCY_LINEARIZABLE);
      if (!r) return fail(ctx, r.error());
      total += static_cast<uint64_t>(r->kvs_size());
      print_scan_page(ctx, a, *r, kvs, has_hex_key);
      const bool is_done = !r->has_more() || r->continuation().empty();
      if (is_done || !a.should_follow) {
        if (ctx.is_json) {
          nlohmann::json out = {
              {"kvs", std::move(kvs)}, {"count", total}, {"has_more", !is_done}, {"revision", r->revision()}};
          if (!is_done) out["continuation"] = to_hex(r->continuation());
          print_json_ok(std::move(out));
        } else if (!is_done) {
          std::cerr << "(more keys: repeat with --all, or with --continuation " << to_hex(r->continuation())
                    << " --revision " << r->revision() << ")\n";
        }
        if (has_hex_key) {
          std::cerr << "(keys that are not UTF-8 are shown as 0x + hex; --key-hex prints every key in hex)\n";
        }
        return kExitOk;
      }
      range.set_continuation(r->continuation());
      // Every further page at the first one's revision: --all lists one consistent state.
      range.set_revision(r->revision());
    }
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

void add_kv_scan_command(CLI::App* kv, Context& ctx, Action& action) {
  auto args = std::make_shared<ScanArgs>();
  auto* scan = kv->add_subcommand("scan", "List keys (and values) that start with a prefix, in key order");
  scan->add_option("prefix", args->prefix, "Only keys starting with this (default: every key)");
  scan->add_flag("--key-hex", args->is_key_hex, "The prefix is given in hex, and every key is printed in hex");
  scan->add_option(
      "--limit", args->limit,
      fmt::format("Keys per page (default {}, at most {})", limits::kDefaultScanLimit, limits::kMaxScanResults));
  scan->add_flag("--all", args->should_follow, "Keep fetching pages until every matching key is listed");
  scan->add_flag("--keys-only", args->is_keys_only, "Print keys without values");
  scan->add_flag("--stale", args->is_stale, "Read from any node; may miss recent writes");
  scan->add_option("--continuation", args->continuation_hex,
                   "Resume after the previous page (the hex token a previous scan printed)");
  scan->add_option("--revision", args->revision,
                   "List the keys as they were at this revision (until it is compacted; default: now)");
  scan->footer(
      "Output: one 'key<TAB>value' line per key, for a human: text as is, bytes that are not\n"
      "UTF-8 as 0x + hex. With --key-hex every key is printed in hex (unambiguous); --json gives\n"
      "each key and value exactly (key_encoding / value_encoding: utf8 or base64). Without --all,\n"
      "one page is printed and, when more keys remain, a note on stderr gives the token to\n"
      "continue with. --all reads every page at the revision of the first, so the listing is\n"
      "one consistent state of the store.\n"
      "Examples:\n  aspen-cli kv scan services/ --all --keys-only\n  aspen-cli kv scan ff00 --key-hex --keys-only\n"
      "  aspen-cli kv scan config/ --revision 1200");
  scan->callback([&ctx, &action, args] { action = [&ctx, args] { return run_scan(ctx, *args); }; });
}

void add_kv_txn_command(CLI::App* kv, Context& ctx, Action& action) {
  auto file = std::make_shared<std::string>();
  auto* txn = kv->add_subcommand("txn", "Run an atomic transaction: compares, then one of two lists of operations");
  txn->add_option("--file", *file, "Read the transaction from this file instead of stdin ('-' = stdin)")
      ->type_name(kPathTypeName);
  txn->footer(std::string(kTxnHelp) + "\nExit 0 if the compares held (success ops ran), 1 if not (failure ops ran).");
  txn->callback([&ctx, &action, file] { action = [&ctx, file] { return run_txn(ctx, *file); }; });
}

}  // namespace aspen::cli

// aspen-cli kv get|set|delete|cas: single-key reads and writes of the key-value store.
//
// Values go in and out byte for byte (payload.h): from an argument, stdin or a file, and to
// stdout (--raw) or a file (-o) exactly as stored.
#include "cmd_kv.h"

#include <fmt/format.h>

#include <iostream>

#include "completion.h"
#include "core/limits.h"
#include "kv/commands.h"
#include "kv/key_value_store.h"
#include "payload.h"

namespace aspen::cli {

namespace {

namespace cpb = clientpb;

// Prints bytes for a human; a binary value gets a note on stderr so stdout stays the value.
void print_value_line(std::string_view bytes) {
  bool is_hex = false;
  std::cout << display_bytes(bytes, &is_hex) << "\n";
  if (is_hex) std::cerr << "(value is not valid UTF-8; shown as hex. --raw or -o FILE give the exact bytes)\n";
}

// The CAS/CAD failure detail: what the key holds now.
std::string describe_current(const kvpb::CommandResult& r) {
  if (r.current().key().empty()) return "the key is absent";
  return fmt::format("current value is {} (mod revision {}, version {})", display_bytes(r.current().value()),
                     r.current().mod_revision(), r.current().version());
}

struct GetArgs {
  std::string key;
  bool is_key_hex = false;
  bool is_stale = false;
  uint64_t node_id = 0;
  bool is_raw = false;
  std::string output_path;
  uint64_t revision = 0;
};

// A found value, as the flags ask: to a file (-o), bare to stdout (--raw), in JSON, or as a line.
int print_found_value(const Context& ctx, const GetArgs& a, const kvpb::KeyValue& kv) {
  if (!a.output_path.empty()) {
    if (auto s = write_file_bytes(a.output_path, kv.value()); !s) return usage_error(ctx, "-o: " + s.error().message());
    if (ctx.is_json) {
      nlohmann::json j = kv_json(kv);
      j.erase("value");
      j.erase("value_encoding");
      j["value_size_bytes"] = kv.value().size();
      print_json_ok({{"found", true}, {"kv", std::move(j)}, {"output", a.output_path}});
    }
    return kExitOk;
  }
  if (a.is_raw) {
    if (auto s = write_stdout_bytes(kv.value()); !s) {
      std::cerr << "error: " << s.error().message() << "\n";
      return kExitFailed;
    }
    return kExitOk;
  }
  if (ctx.is_json) {
    print_json_ok({{"found", true}, {"kv", kv_json(kv)}});
  } else {
    print_value_line(kv.value());
  }
  return kExitOk;
}

int run_get(const Context& ctx, const GetArgs& a) {
  if (a.is_raw && ctx.is_json) return usage_error(ctx, "--raw prints the bare value, --json an object: give one");
  auto key = key_from_arg(a.key, a.is_key_hex);
  if (!key) return usage_error(ctx, key.error().message());
  return with_client(ctx, [&](client::Client& c) {
    const auto consistency = a.is_stale ? cpb::CONSISTENCY_STALE : cpb::CONSISTENCY_LINEARIZABLE;
    Result<std::optional<kvpb::KeyValue>> r = std::optional<kvpb::KeyValue>{};
    if (a.revision == 0) {
      r = c.read(*key, consistency, client::Target{a.node_id});
    } else {
      auto req = kv::key_range(*key);
      req.set_revision(a.revision);
      auto page = c.scan(req, consistency, client::Target{a.node_id});
      if (!page) {
        r = std::unexpected(page.error());
      } else if (page->kvs_size() > 0) {
        r = std::optional<kvpb::KeyValue>(page->kvs(0));
      }
    }
    if (!r) return fail(ctx, r.error());
    if (!r->has_value()) {
      if (ctx.is_json) {
        print_json_ok({{"found", false}});
      } else {
        std::cerr << "key not found\n";
      }
      return kExitFailed;
    }
    return print_found_value(ctx, a, **r);
  });
}

struct SetArgs {
  std::string key;
  bool is_key_hex = false;
  PayloadSource value;
  uint64_t lease_id = 0;
};

int run_set(const Context& ctx, const SetArgs& a) {
  auto key = key_from_arg(a.key, a.is_key_hex);
  if (!key) return usage_error(ctx, key.error().message());
  auto value = read_payload(a.value, kValueLimit, "value");
  if (!value) return payload_error(ctx, value.error());
  return with_client(ctx, [&](client::Client& c) {
    auto r = kv::put(c, *key, *value, a.lease_id);
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

struct DeleteArgs {
  std::string key;
  bool is_key_hex = false;
};

int run_delete(const Context& ctx, const DeleteArgs& a) {
  auto key = key_from_arg(a.key, a.is_key_hex);
  if (!key) return usage_error(ctx, key.error().message());
  return with_client(ctx, [&](client::Client& c) {
    auto r = kv::del(c, *key);
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

struct CasArgs {
  std::string key;
  bool is_key_hex = false;
  PayloadSource new_value;
  std::string expected_value;
  bool has_expected = false;
  std::string expected_file;
  bool should_be_absent = false;
  uint64_t lease_id = 0;
};

// The condition's expected value (nullopt for --absent), read before anything is sent.
Result<std::optional<std::string>> cas_expected(const CasArgs& a) {
  if (a.should_be_absent) return std::nullopt;
  if (a.has_expected) return a.expected_value;
  auto bytes = read_payload(PayloadSource{"", false, a.expected_file}, kValueLimit, "expected value");
  if (!bytes) return std::unexpected(bytes.error());
  return std::move(*bytes);
}

int print_cas_result(const Context& ctx, const kvpb::CommandResult& r) {
  if (ctx.is_json) {
    nlohmann::json out = {{"succeeded", r.succeeded()}, {"revision", r.revision()}};
    if (!r.succeeded()) out["current"] = r.current().key().empty() ? nlohmann::json(nullptr) : kv_json(r.current());
    print_json_ok(std::move(out));
  } else if (r.succeeded()) {
    std::cout << "OK (revision " << r.revision() << ")\n";
  } else {
    std::cout << "condition failed: " << describe_current(r) << "\n";
  }
  return r.succeeded() ? kExitOk : kExitFailed;
}

int run_cas(const Context& ctx, const CasArgs& a) {
  const int conditions = int{a.has_expected} + int{!a.expected_file.empty()} + int{a.should_be_absent};
  if (conditions != 1) {
    return usage_error(ctx, "kv cas needs exactly one of --expected VALUE, --expected-file PATH or --absent");
  }
  if (a.expected_file == "-" && a.new_value.is_stdin()) {
    return usage_error(ctx, "the new value and --expected-file cannot both read stdin: give one as a file");
  }
  auto key = key_from_arg(a.key, a.is_key_hex);
  if (!key) return usage_error(ctx, key.error().message());
  auto new_value = read_payload(a.new_value, kValueLimit, "new value");
  if (!new_value) return payload_error(ctx, new_value.error());
  auto expected = cas_expected(a);
  if (!expected) return payload_error(ctx, expected.error());
  return with_client(ctx, [&](client::Client& c) {
    auto r = kv::cas(c, *key, *expected, *new_value, a.lease_id);
    if (!r) return fail(ctx, r.error());
    if (auto s = kv::result_status(*r); !s) return fail(ctx, s.error());
    return print_cas_result(ctx, *r);
  });
}

void add_get_command(CLI::App* kv, Context& ctx, Action& action) {
  auto args = std::make_shared<GetArgs>();
  auto* get = kv->add_subcommand("get", "Print the value of a key (exit 1 if the key does not exist)");
  get->add_option("key", args->key, "The key")->required();
  add_key_hex_flag(get, args->is_key_hex);
  get->add_flag("--stale", args->is_stale,
                "Read from any node without confirming leadership: faster, but may miss recent writes");
  get->add_option("--node", args->node_id, "Read from this node id (with --stale: that node's own state)");
  auto* raw = get->add_flag("--raw", args->is_raw, "Write the exact bytes to stdout: no newline, no hex");
  auto* out =
      get->add_option("-o,--output", args->output_path, "Write the exact bytes to this file")->type_name(kPathTypeName);
  raw->excludes(out);
  get->add_option("--revision", args->revision,
                  "The value the key had at this revision (until the history is compacted; default: now)");
  get->footer(
      "Reads are linearizable by default: they see every write acknowledged before they began.\n"
      "Without --raw or -o the value is printed as a line for a human; a value that is not UTF-8\n"
      "is then shown as hex (0x...), which a text value starting with 0x would look like too:\n"
      "scripts use --raw, -o FILE or --json (binary values as base64, value_encoding says which).\n"
      "Examples:\n  aspen-cli kv get config/db-url\n  aspen-cli kv get certs/web.der -o web.der\n"
      "  aspen-cli kv get config/db-url --revision 1200");
  get->callback([&ctx, &action, args] { action = [&ctx, args] { return run_get(ctx, *args); }; });
}

void add_set_command(CLI::App* kv, Context& ctx, Action& action) {
  auto args = std::make_shared<SetArgs>();
  auto* set = kv->add_subcommand("set", "Set a key to a value (creates or overwrites it)");
  set->add_option("key", args->key, "The key (at most 1024 bytes)")->required();
  add_payload_options(set, args->value, "value", "--value-file", "value", kValueLimit);
  add_key_hex_flag(set, args->is_key_hex);
  set->add_option("--lease", args->lease_id, "Attach the key to this lease: it is deleted when the lease ends");
  set->footer(
      "Prints the revision of the write. If the command times out (exit 3) the write may or may\n"
      "not have been applied; read the key to find out. A value over 1 MiB is refused (exit 4)\n"
      "before anything is sent. An argument cannot hold more than 128 KiB or every byte: give\n"
      "larger or binary values on stdin or with --value-file.\n"
      "Examples:\n  aspen-cli kv set config/db-url postgres://db:5432/app\n"
      "  aspen-cli kv set certs/web.der --value-file web.der\n  gzip -c data.json | aspen-cli kv set data.gz");
  set->callback([&ctx, &action, args] { action = [&ctx, args] { return run_set(ctx, *args); }; });
}

void add_delete_command(CLI::App* kv, Context& ctx, Action& action) {
  auto args = std::make_shared<DeleteArgs>();
  auto* del = kv->add_subcommand("delete", "Delete a key");
  del->add_option("key", args->key, "The key")->required();
  add_key_hex_flag(del, args->is_key_hex);
  del->footer(
      "Deleting a key that does not exist succeeds and reports that nothing was deleted.\n"
      "Example:\n  aspen-cli kv delete config/db-url");
  del->callback([&ctx, &action, args] { action = [&ctx, args] { return run_delete(ctx, *args); }; });
}

void add_cas_command(CLI::App* kv, Context& ctx, Action& action) {
  auto args = std::make_shared<CasArgs>();
  auto* cas = kv->add_subcommand("cas", "Compare-and-swap: set a key only if it currently holds an expected value");
  cas->add_option("key", args->key, "The key")->required();
  add_payload_options(cas, args->new_value, "new", "--value-file", "value to write if the condition holds",
                      kValueLimit);
  add_key_hex_flag(cas, args->is_key_hex);
  auto* expected =
      cas->add_option("--expected", args->expected_value, "Write only if the key holds exactly this value");
  auto* expected_file = cas->add_option("--expected-file", args->expected_file,
                                        "Write only if the key holds exactly this file's bytes ('-': stdin)")
                            ->type_name(kPathTypeName);
  auto* absent = cas->add_flag("--absent", args->should_be_absent, "Write only if the key does not exist");
  expected->excludes(absent);
  expected->excludes(expected_file);
  expected_file->excludes(absent);
  cas->add_option("--lease", args->lease_id, "Attach the written key to this lease");
  cas->footer(
      "Exit 0 if the value was written, 1 if the condition did not hold (the current value is\n"
      "then printed). Exactly one of --expected, --expected-file or --absent is required; only\n"
      "one of the new value and the expected value can come from stdin.\n"
      "Examples:\n  aspen-cli kv cas lock/db worker-7 --absent\n"
      "  aspen-cli kv cas config/mode blue --expected green\n"
      "  aspen-cli kv cas certs/web.der --value-file new.der --expected-file old.der");
  cas->callback([&ctx, &action, args, expected] {
    args->has_expected = expected->count() > 0;
    action = [&ctx, args] { return run_cas(ctx, *args); };
  });
}

void add_compact_command(CLI::App* kv, Context& ctx, Action& action) {
  auto revision = std::make_shared<uint64_t>(0);
  auto* compact = kv->add_subcommand("compact", "Drop the history below a revision (needs admin)");
  compact->add_option("revision", *revision, "The oldest revision to keep readable")->required();
  compact->footer(
      "Past versions of keys (for 'kv get --revision', 'kv scan --revision' and watches) are kept\n"
      "until compacted. After this, reads and watches below REVISION fail with Compacted; each\n"
      "key keeps its version as of REVISION. The leader also compacts by itself past\n"
      "--history-retention-revisions and --history-retention-s (docs/watch.md).\n"
      "Example:\n  aspen-cli kv compact 1200");
  compact->callback([&ctx, &action, revision] {
    action = [&ctx, revision] {
      return with_client(ctx, [&](client::Client& c) {
        kvpb::Command cmd;
        cmd.mutable_compact()->set_revision(*revision);
        auto r = c.execute(cmd);
        if (!r) return fail(ctx, r.error());
        if (auto s = kv::result_status(*r); !s) return fail(ctx, s.error());
        if (ctx.is_json) {
          print_json_ok({{"compacted_revision", *revision}});
        } else {
          std::cout << "compacted to revision " << *revision << "\n";
        }
        return kExitOk;
      });
    };
  });
}

}  // namespace

void add_key_hex_flag(CLI::App* cmd, bool& is_key_hex) {
  cmd->add_flag("--key-hex", is_key_hex,
                "The key is given in hex (e.g. ff00 for the two bytes 0xff 0x00): for keys that are not text");
}

void add_kv_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* kv = app.add_subcommand("kv", "Read and write keys in the replicated key-value store");
  kv->require_subcommand(1);
  add_get_command(kv, ctx, action);
  add_set_command(kv, ctx, action);
  add_delete_command(kv, ctx, action);
  add_kv_scan_command(kv, ctx, action);
  add_cas_command(kv, ctx, action);
  add_kv_txn_command(kv, ctx, action);
  add_compact_command(kv, ctx, action);
  add_kv_watch_command(kv, ctx, action);
  add_kv_log_command(kv, ctx, action);
}

}  // namespace aspen::cli

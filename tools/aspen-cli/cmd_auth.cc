// aspen-cli auth ... and identity ...: capability tokens (docs/security.md).
//
//   aspen-cli identity show
//   aspen-cli auth whoami
//   aspen-cli auth token create --can read:app/ --can write:app/ --for KEY --expires-in 24h
//   aspen-cli auth token delegate --can read:app/logs/ --for KEY --expires-in 1h
//   aspen-cli auth token inspect [FILE]
//   aspen-cli auth token revoke FILE|ID [--expires-s S]
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sodium.h>

#include <chrono>
#include <ctime>
#include <iostream>

#include "aspen/auth.pb.h"
#include "auth/token.h"
#include "auth/token_text.h"
#include "cli.h"
#include "core/encoding.h"
#include "completion.h"
#include "credentials.h"

namespace aspen::cli {

namespace {

uint64_t now_s() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// The id and expiry a token claims (not verified: the node verifies).
struct Claims {
  std::string id;
  uint64_t expires_s = 0;
};

Result<Claims> claims_of(std::string_view token) {
  authpb::SignedToken signed_token;
  authpb::TokenBody body;
  if (!signed_token.ParseFromArray(token.data(), static_cast<int>(token.size())) ||
      !body.ParseFromString(signed_token.body()) || body.id().size() != auth::kTokenIdSizeBytes) {
    return make_error(ErrorCode::kInvalidArgument, "not a capability token");
  }
  return Claims{body.id(), body.expires_s()};
}

// A token from a file, or the text itself.
Result<std::string> token_from(const std::string& arg) {
  if (arg.starts_with(auth::kTokenTextPrefix)) return auth::decode_token_text(arg);
  return read_token_file(arg);
}

struct CreateArgs {
  std::vector<std::string> can;
  std::string for_key;
  std::string expires_in = "24h";
  bool is_delegable = false;
  std::string root_key_file;
  std::string out_file;
};

Result<auth::TokenSpec> spec_from(const CreateArgs& a, std::optional<uint64_t> max_expires_s) {
  auth::TokenSpec spec;
  if (a.can.empty()) return make_error(ErrorCode::kInvalidArgument, "name at least one capability with --can");
  for (const auto& c : a.can) {
    auto cap = auth::parse_capability(c);
    if (!cap) return std::unexpected(cap.error());
    spec.capabilities.push_back(*cap);
  }
  if (a.is_delegable) spec.capabilities.push_back({auth::Action::kDelegate, ""});
  auto key = transport::PublicKey::parse(a.for_key);
  if (!key) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--for must be a public key (52 characters, as `aspen-cli identity show` prints): {}",
                                  key.error().message()));
  }
  std::copy(key->bytes().begin(), key->bytes().end(), spec.audience.begin());
  auto ttl = parse_duration_s(a.expires_in);
  if (!ttl) return std::unexpected(ttl.error());
  const uint64_t now = now_s();
  spec.not_before_s = now > 60 ? now - 60 : 0;  // some slack for clocks a little behind ours
  spec.expires_s = now + *ttl;
  if (max_expires_s && spec.expires_s > *max_expires_s) spec.expires_s = *max_expires_s;
  randombytes_buf(spec.id.data(), spec.id.size());
  return spec;
}

int output_token(const Context& ctx, const std::string& token, const std::string& out_file) {
  const std::string text = auth::encode_token_text(token);
  auto claims = claims_of(token);
  if (!out_file.empty()) {
    if (auto s = write_private_file(out_file, text + "\n"); !s) return fail(ctx, s.error());
  }
  if (ctx.is_json) {
    print_json_ok({{"token", text}, {"id", claims ? to_hex(claims->id) : ""}, {"expires_s", claims ? claims->expires_s : 0},
                   {"file", out_file}});
  } else if (out_file.empty()) {
    std::cout << text << "\n";
  } else {
    std::cout << "token " << (claims ? to_hex(claims->id) : "") << " written to " << out_file << "\n";
  }
  return kExitOk;
}

int run_create(const Context& ctx, const CreateArgs& a) {
  if (a.root_key_file.empty()) {
    return usage_error(ctx, "--root-key-file is required: the token is signed with the cluster's root key (written "
                            "by `cluster init`)");
  }
  auto root = transport::read_identity_file(a.root_key_file);
  if (!root) return fail(ctx, Error(root.error().code(), fmt::format("root key {}: {}", a.root_key_file, root.error().message())));
  auto spec = spec_from(a, std::nullopt);
  if (!spec) return fail(ctx, spec.error());
  auto token = auth::issue_token(root->seed(), *spec);
  if (!token) return fail(ctx, token.error());
  return output_token(ctx, *token, a.out_file);
}

int run_delegate(const Context& ctx, const CreateArgs& a) {
  auto creds = load_credentials(ctx.flags.identity_path.value_or(""), ctx.flags.token_file.value_or(""));
  if (!creds) return fail(ctx, creds.error());
  if (!creds->identity || creds->token.empty()) {
    return usage_error(ctx, "delegating needs this client's identity and a token of its own with the delegate "
                            "capability (--identity, --token-file)");
  }
  auto parent = claims_of(creds->token);
  auto spec = spec_from(a, parent ? std::optional<uint64_t>(parent->expires_s) : std::nullopt);
  if (!spec) return fail(ctx, spec.error());
  auto token = auth::delegate_token(creds->token, creds->identity->seed(), *spec);
  if (!token) return fail(ctx, token.error());
  return output_token(ctx, *token, a.out_file);
}

int run_inspect(const Context& ctx, const std::string& arg) {
  std::string token;
  if (arg.empty()) {
    auto creds = load_credentials(ctx.flags.identity_path.value_or(""), ctx.flags.token_file.value_or(""));
    if (!creds) return fail(ctx, creds.error());
    if (creds->token.empty()) return usage_error(ctx, "no token to inspect: name a file, or set --token-file");
    token = creds->token;
  } else {
    auto t = token_from(arg);
    if (!t) return fail(ctx, t.error());
    token = *t;
  }
  auto text = auth::inspect_token(token);
  if (!text) return fail(ctx, text.error());
  if (ctx.is_json) {
    print_json_ok({{"description", *text}});
  } else {
    std::cout << *text;
    if (!text->ends_with('\n')) std::cout << "\n";
  }
  return kExitOk;
}

int run_revoke(const Context& ctx, const std::string& arg, uint64_t expires_s_flag) {
  std::string id;
  uint64_t expires_s = expires_s_flag;
  if (auto raw = from_hex(arg); raw && raw->size() == auth::kTokenIdSizeBytes) {
    id = std::move(*raw);
    // Without the token we do not know when it expires: keep the revocation for 100 years.
    if (expires_s == 0) expires_s = now_s() + uint64_t{100} * 365 * 86400;
  } else {
    auto t = token_from(arg);
    if (!t) return fail(ctx, t.error());
    auto claims = claims_of(*t);
    if (!claims) return fail(ctx, claims.error());
    id = claims->id;
    if (expires_s == 0) expires_s = claims->expires_s;
  }
  auth::TokenId token_id{};
  std::copy(id.begin(), id.end(), token_id.begin());
  return with_client(ctx, [&](client::Client& c) {
    if (auto s = c.revoke_token(token_id, expires_s); !s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"revoked", to_hex(id)}});
    } else {
      std::cout << "revoked " << to_hex(id) << " (and every token delegated from it)\n";
    }
    return kExitOk;
  });
}

int run_whoami(const Context& ctx) {
  return with_client(ctx, [&](client::Client& c) {
    auto w = c.who_am_i();
    if (!w) return fail(ctx, w.error());
    std::vector<std::string> caps(w->capabilities().begin(), w->capabilities().end());
    if (ctx.is_json) {
      print_json_ok({{"public_key", w->public_key()},
                     {"token_id", to_hex(w->token_id())},
                     {"capabilities", caps},
                     {"expires_s", w->expires_s()},
                     {"chain_depth", w->chain_depth()}});
    } else {
      std::cout << "key:          " << w->public_key() << "\n"
                << "token:        " << to_hex(w->token_id()) << " (chain depth " << w->chain_depth() << ")\n"
                << "capabilities: " << fmt::format("{}", fmt::join(caps, " ")) << "\n"
                << "expires:      " << fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(static_cast<std::time_t>(w->expires_s())))
                << "\n";
    }
    return kExitOk;
  });
}

int run_identity_show(const Context& ctx) {
  auto creds = load_credentials(ctx.flags.identity_path.value_or(""), "");
  if (!creds) return fail(ctx, creds.error());
  if (!creds->identity) return usage_error(ctx, "no identity: pass --identity FILE (or set ASPEN_IDENTITY or HOME)");
  if (ctx.is_json) {
    print_json_ok({{"public_key", creds->identity->public_key().to_string()}, {"file", creds->identity_path}});
  } else {
    std::cout << creds->identity->public_key().to_string() << "\n";
  }
  return kExitOk;
}

void add_create_options(CLI::App* cmd, CreateArgs& a) {
  cmd->add_option("--can", a.can, "A capability: read:PREFIX, write:PREFIX, delete:PREFIX, full:PREFIX or admin "
                                  "(repeat; an empty PREFIX means every key)")
      ->required();
  cmd->add_option("--for", a.for_key, "The public key that will present the token (`aspen-cli identity show` on its side)")
      ->required();
  cmd->add_option("--expires-in", a.expires_in, "Validity: 90s, 30m, 24h (default), 7d");
  cmd->add_flag("--delegable", a.is_delegable, "Let the holder make narrower tokens from it");
  cmd->add_option("-o,--output", a.out_file, "Write the token to this file (mode 0600) instead of printing it")
      ->type_name(kPathTypeName);
}

}  // namespace

void add_auth_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* identity = app.add_subcommand("identity", "This client's key (what tokens are made for)");
  identity->require_subcommand(1);
  identity->add_subcommand("show", "Print this client's public key (creates the key on first use)")
      ->callback([&ctx, &action] { action = [&ctx] { return run_identity_show(ctx); }; });

  auto* auth_cmd = app.add_subcommand("auth", "Capability tokens: who may do what");
  auth_cmd->require_subcommand(1);
  auth_cmd->add_subcommand("whoami", "What the cluster verifies this client's token to grant")
      ->callback([&ctx, &action] { action = [&ctx] { return run_whoami(ctx); }; });
  auto* token = auth_cmd->add_subcommand("token", "Create, delegate, inspect and revoke tokens");
  token->require_subcommand(1);

  auto create_args = std::make_shared<CreateArgs>();
  auto* create = token->add_subcommand("create", "Sign a token with the cluster's root key (an operator's task)");
  add_create_options(create, *create_args);
  create->add_option("--root-key-file", create_args->root_key_file, "The root key `cluster init` wrote")
      ->type_name(kPathTypeName);
  create->callback([&ctx, &action, create_args] { action = [&ctx, create_args] { return run_create(ctx, *create_args); }; });

  auto delegate_args = std::make_shared<CreateArgs>();
  auto* delegate = token->add_subcommand(
      "delegate", "Sign a narrower token with this client's key, from its own token (which must grant delegate)");
  add_create_options(delegate, *delegate_args);
  delegate->callback(
      [&ctx, &action, delegate_args] { action = [&ctx, delegate_args] { return run_delegate(ctx, *delegate_args); }; });

  auto inspect_arg = std::make_shared<std::string>();
  auto* inspect = token->add_subcommand("inspect", "Show what a token claims (without verifying it)");
  inspect->add_option("token", *inspect_arg, "A token file or text (default: this client's token)");
  inspect->callback([&ctx, &action, inspect_arg] { action = [&ctx, inspect_arg] { return run_inspect(ctx, *inspect_arg); }; });

  auto revoke_arg = std::make_shared<std::string>();
  auto revoke_expires = std::make_shared<uint64_t>(0);
  auto* revoke = token->add_subcommand("revoke", "Revoke a token and everything delegated from it (needs admin)");
  revoke->add_option("token", *revoke_arg, "A token file, its text, or its id (32 hex digits)")->required();
  revoke->add_option("--expires-s", *revoke_expires, "When the token expires (Unix seconds; read from the token if given)");
  revoke->callback([&ctx, &action, revoke_arg, revoke_expires] {
    action = [&ctx, revoke_arg, revoke_expires] { return run_revoke(ctx, *revoke_arg, *revoke_expires); };
  });
}

}  // namespace aspen::cli

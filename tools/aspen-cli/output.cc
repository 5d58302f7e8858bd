// Connecting, exit codes and printing for aspen-cli.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli.h"
#include "credentials.h"
#include "core/encoding.h"
#include "core/hlc.h"
#include "payload.h"

namespace aspen::cli {

int exit_code_for(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kNotLeader:
    case ErrorCode::kTimeout:
    case ErrorCode::kUnavailable:
    case ErrorCode::kProposalDropped:
    case ErrorCode::kSessionExpired:  // like a timeout: the write's outcome is unknown
      return kExitUnavailable;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kKeyTooLarge:
    case ErrorCode::kValueTooLarge:
    case ErrorCode::kBatchTooLarge:
    case ErrorCode::kScanTooLarge:
    case ErrorCode::kMessageTooLarge:
    case ErrorCode::kTxnTooLarge:
    case ErrorCode::kConfigInvalid:
      return kExitInvalid;
    case ErrorCode::kUnauthorized:
      return kExitUnauthorized;
    default:
      return kExitFailed;
  }
}

int fail(const Context& ctx, const Error& error) {
  if (ctx.is_json) {
    nlohmann::json out;
    out["ok"] = false;
    out["error"] = {{"code", std::string(error_code_name(error.code()))}, {"message", error.message()}};
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cerr << "error: " << error.to_string() << "\n";
  }
  return exit_code_for(error);
}

int usage_error(const Context& ctx, const std::string& message) {
  if (ctx.is_json) {
    nlohmann::json out;
    out["ok"] = false;
    out["error"] = {{"code", "Usage"}, {"message", message}};
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cerr << "error: " << message << "\nRun with --help for usage.\n";
  }
  return kExitUsage;
}

Result<CliSettings> current_settings(const Context& ctx) {
  return resolve_settings(ctx.flags, [](const char* name) { return std::getenv(name); });
}

int with_client(const Context& ctx, const std::function<int(client::Client&)>& fn) {
  return with_client_and_credentials(ctx, [&fn](client::Client& c, Credentials&) { return fn(c); });
}

int with_client_and_credentials(const Context& ctx, const std::function<int(client::Client&, Credentials&)>& fn) {
  auto settings = current_settings(ctx);
  if (!settings) return usage_error(ctx, settings.error().message());
  if (settings->ticket.empty()) {
    return usage_error(ctx,
                       "no cluster ticket: pass --ticket or --ticket-file, set ASPEN_TICKET, or put ticket_file in "
                       "the profile (see 'aspen-cli config show')");
  }
  auto creds = load_credentials(ctx.flags.identity_path.value_or(""), ctx.flags.token_file.value_or(""));
  if (!creds) {
    if (creds.error().code() == ErrorCode::kUnauthorized) return fail(ctx, creds.error());
    return usage_error(ctx, creds.error().message());
  }
  client::ClientOptions options;
  options.timeout_ms = settings->timeout_ms;
  options.connect_timeout_ms = std::min<uint32_t>(options.connect_timeout_ms, settings->timeout_ms);
  options.attempt_timeout_ms = std::min<uint32_t>(options.attempt_timeout_ms, settings->timeout_ms);
  // One command, one write: waiting a little longer for its answer (a 1 MiB value on a busy
  // disk) beats an ambiguous timeout the user must then resolve by hand.
  options.write_attempt_timeout_ms = std::min<uint32_t>(5000, settings->timeout_ms);
  options.identity = creds->identity;
  options.token = creds->token;
  auto c = client::Client::connect(std::string_view(settings->ticket), options);
  if (!c) {
    if (c.error().code() == ErrorCode::kInvalidArgument) return usage_error(ctx, "bad ticket: " + c.error().message());
    return fail(ctx, c.error());
  }
  return fn(**c, *creds);
}

void print_json_ok(nlohmann::json fields) {
  nlohmann::json out = nlohmann::json::object();
  out["ok"] = true;
  for (auto& [k, v] : fields.items()) out[k] = std::move(v);
  // Every byte string went through set_bytes, so this never meets invalid UTF-8; `replace`
  // keeps a mistake from becoming an exception.
  std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong encodings, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMinForLength[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

std::string display_bytes(std::string_view bytes, bool* is_hex) {
  const bool hex = !is_valid_utf8(bytes);
  if (is_hex != nullptr) *is_hex = hex;
  return hex ? "0x" + to_hex(bytes) : std::string(bytes);
}

void set_bytes(nlohmann::json& obj, const std::string& name, std::string_view bytes) {
  const bool is_text = is_valid_utf8(bytes);
  obj[name] = is_text ? std::string(bytes) : base64_encode(bytes);
  obj[name + "_encoding"] = is_text ? "utf8" : "base64";
}

nlohmann::json kv_json(const kvpb::KeyValue& kv) {
  nlohmann::json j = nlohmann::json::object();
  set_bytes(j, "key", kv.key());
  set_bytes(j, "value", kv.value());
  j["create_revision"] = kv.create_revision();
  j["mod_revision"] = kv.mod_revision();
  j["version"] = kv.version();
  j["lease_id"] = kv.lease_id();
  // The hybrid logical clock stamp of the command that last changed the key (null for keys
  // last written before stamps existed): "physical_ms.logical@node_id", ordered as the tuple
  // (hlc_physical_ms, hlc_logical, hlc_node_id).
  if (kv.has_mod_hlc()) {
    const auto& h = kv.mod_hlc();
    j["hlc"] = HlcTimestamp{h.physical_ms(), h.logical(), h.node_id()}.to_string();
    j["hlc_physical_ms"] = h.physical_ms();
    j["hlc_logical"] = h.logical();
    j["hlc_node_id"] = h.node_id();
  } else {
    j["hlc"] = nullptr;
  }
  return j;
}

nlohmann::json lease_json(const kvpb::Lease& lease) {
  return {{"id", lease.id()},
          {"ttl_ms", lease.ttl_ms()},
          {"expires_at_ms", lease.expires_at_ms()},
          {"granted_revision", lease.granted_revision()},
          {"key_count", lease.key_count()}};
}

}  // namespace aspen::cli

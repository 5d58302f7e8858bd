#include "auth/internal/token_wire.h"

#include <fmt/format.h>
#include <google/protobuf/unknown_field_set.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "aspen/auth.pb.h"
#include "core/assert.h"
#include "core/encoding.h"
#include "core/limits.h"

namespace aspen::auth::internal {
namespace {

static_assert(crypto_sign_PUBLICKEYBYTES == kKeySizeBytes);
static_assert(crypto_sign_SEEDBYTES == kKeySizeBytes);
static_assert(crypto_sign_BYTES == kSignatureSizeBytes);

std::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

// Where in a chain a problem is, for messages: nothing for a lone token.
std::string at_level(size_t index, size_t depth) {
  if (depth == 1) return "";
  return fmt::format(" (chain level {} of {}; level 1 is issued by the root key)", index + 1,
                     depth);
}

// While the chain is still being unwrapped (its depth unknown), counted from the token itself.
std::string levels_up(size_t levels) {
  if (levels == 0) return "";
  return fmt::format(" (in the parent {} level{} up)", levels, levels == 1 ? "" : "s");
}

std::optional<Action> action_from_proto(int action) {
  switch (action) {
    case authpb::FULL:
      return Action::kFull;
    case authpb::READ:
      return Action::kRead;
    case authpb::WRITE:
      return Action::kWrite;
    case authpb::DELETE:
      return Action::kDelete;
    case authpb::DELEGATE:
      return Action::kDelegate;
    case authpb::ADMIN:
      return Action::kAdmin;
    default:
      return std::nullopt;
  }
}

authpb::Action action_to_proto(Action action) {
  switch (action) {
    case Action::kFull:
      return authpb::FULL;
    case Action::kRead:
      return authpb::READ;
    case Action::kWrite:
      return authpb::WRITE;
    case Action::kDelete:
      return authpb::DELETE;
    case Action::kDelegate:
      return authpb::DELEGATE;
    case Action::kAdmin:
      return authpb::ADMIN;
  }
  ASPEN_UNREACHABLE();
}

template <size_t N>
Status copy_fixed(const std::string& bytes, std::array<uint8_t, N>& out, std::string_view what,
                  const std::string& where) {
  if (bytes.size() != N) {
    return invalid(fmt::format("malformed token{}: {} is {} bytes, expected {}", where, what,
                               bytes.size(), N));
  }
  std::memcpy(out.data(), bytes.data(), N);
  return {};
}

// The level's fields from a parsed body, checking every size and limit.
Status take_body(const authpb::TokenBody& body, TokenLevel& level, const std::string& where) {
  if (body.version() != kTokenVersion) {
    return invalid(fmt::format("unsupported token version {}{} (this node knows version {})",
                               body.version(), where, kTokenVersion));
  }
  if (auto ok = copy_fixed(body.id(), level.id, "id", where); !ok) return ok;
  if (auto ok = copy_fixed(body.issuer_key(), level.issuer, "issuer key", where); !ok) return ok;
  if (auto ok = copy_fixed(body.audience_key(), level.audience, "audience key", where); !ok)
    return ok;
  if (static_cast<size_t>(body.capabilities_size()) > limits::kMaxTokenCapabilities) {
    return invalid(fmt::format("malformed token{}: {} capabilities; the limit is {}", where,
                               body.capabilities_size(), limits::kMaxTokenCapabilities));
  }
  level.capabilities.reserve(static_cast<size_t>(body.capabilities_size()));
  for (int i = 0; i < body.capabilities_size(); ++i) {
    const authpb::Capability& pb = body.capabilities(i);
    const std::optional<Action> action = action_from_proto(pb.action());
    if (!action) {
      return invalid(fmt::format("malformed token{}: capability #{} has an unknown action ({})",
                                 where, i + 1, static_cast<int>(pb.action())));
    }
    Capability capability{*action, pb.prefix()};
    if (auto ok = validate_capability(capability); !ok) {
      return invalid(
          fmt::format("malformed token{}: capability #{}: {}", where, i + 1, ok.error().message()));
    }
    level.capabilities.push_back(std::move(capability));
  }
  level.not_before_s = body.not_before_s();
  level.expires_s = body.expires_s();
  return {};
}

bool has_unknown_fields(const google::protobuf::Message& message) {
  return !message.GetReflection()->GetUnknownFields(message).empty();
}

// One SignedToken unwrapped: what was signed, the signature, the parsed body.
struct Unwrapped {
  std::string body_bytes;
  std::string signature;
  authpb::TokenBody body;
};

}  // namespace

void ensure_sodium() {
  static const int rc = sodium_init();
  ASPEN_ASSERT_MSG(rc >= 0, "libsodium failed to initialise");
}

Result<std::vector<TokenLevel>> decode_chain(std::string_view token) {
  // Unwrap from the token down to the root. Each level's parent is a strict part of its
  // body, so the chain is finite; the depth limit bounds the work to kMaxTokenChainDepth
  // parses of at most the token's size.
  std::vector<Unwrapped> unwrapped;  // the token first
  std::string current(token);
  while (true) {
    if (unwrapped.size() == limits::kMaxTokenChainDepth) {
      return invalid(fmt::format("token chain is deeper than the limit of {} levels",
                                 limits::kMaxTokenChainDepth));
    }
    const std::string where = levels_up(unwrapped.size());
    authpb::SignedToken signed_pb;
    if (!signed_pb.ParseFromString(current)) {
      return invalid(fmt::format("malformed token{}: not a signed token", where));
    }
    // Protobuf would also accept the same two fields reordered, repeated, with padded
    // lengths or beside unknown fields. Refusing every encoding but the one sign_token writes
    // makes a token's bytes unique (Ed25519 signatures, as libsodium checks them, are not
    // malleable either), so the bytes can key a cache of verified tokens.
    if (has_unknown_fields(signed_pb) || signed_pb.SerializeAsString() != current) {
      return invalid(fmt::format("malformed token{}: not canonically encoded", where));
    }
    Unwrapped u;
    u.body_bytes = std::move(*signed_pb.mutable_body());
    u.signature = std::move(*signed_pb.mutable_signature());
    if (!u.body.ParseFromString(u.body_bytes)) {
      return invalid(fmt::format("malformed token{}: its body is not a token body", where));
    }
    // Fail closed: a field this version does not know might restrict what the token grants.
    if (has_unknown_fields(u.body)) {
      return invalid(
          fmt::format("malformed token{}: its body has fields this node does not know", where));
    }
    current = std::move(*u.body.mutable_parent());
    unwrapped.push_back(std::move(u));
    if (current.empty()) break;
  }
  const size_t depth = unwrapped.size();
  std::vector<TokenLevel> chain(depth);
  for (size_t i = 0; i < depth; ++i) {
    Unwrapped& u = unwrapped[depth - 1 - i];
    TokenLevel& level = chain[i];
    const std::string where = at_level(i, depth);
    if (u.signature.size() != kSignatureSizeBytes) {
      return invalid(fmt::format("malformed token{}: signature is {} bytes, expected {}", where,
                                 u.signature.size(), kSignatureSizeBytes));
    }
    if (auto ok = take_body(u.body, level, where); !ok) return std::unexpected(ok.error());
    level.body_bytes = std::move(u.body_bytes);
    level.signature = std::move(u.signature);
  }
  return chain;
}

bool signature_is_valid(const TokenLevel& level) {
  ensure_sodium();
  ASPEN_ASSERT(level.signature.size() == kSignatureSizeBytes);
  std::string message;
  message.reserve(kSignatureContext.size() + level.body_bytes.size());
  message.append(kSignatureContext).append(level.body_bytes);
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(level.signature.data()),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), level.issuer.data()) == 0;
}

Status validate_spec(const TokenSpec& spec) {
  if (spec.capabilities.size() > limits::kMaxTokenCapabilities) {
    return invalid(fmt::format("a token may carry at most {} capabilities, got {}",
                               limits::kMaxTokenCapabilities, spec.capabilities.size()));
  }
  for (const Capability& c : spec.capabilities) {
    if (auto ok = validate_capability(c); !ok) return ok;
  }
  if (spec.not_before_s >= spec.expires_s) {
    return invalid(fmt::format("empty validity window: not before {} but expires at {}",
                               format_unix_time(spec.not_before_s),
                               format_unix_time(spec.expires_s)));
  }
  return {};
}

Status check_narrower(const TokenLevel& parent, const std::vector<Capability>& capabilities,
                      uint64_t not_before_s, uint64_t expires_s) {
  const bool can_delegate =
      std::any_of(parent.capabilities.begin(), parent.capabilities.end(),
                  [](const Capability& c) { return c.action == Action::kDelegate; });
  if (!can_delegate) return invalid("the parent token does not grant delegate");
  for (const Capability& child : capabilities) {
    const bool is_covered =
        std::any_of(parent.capabilities.begin(), parent.capabilities.end(),
                    [&](const Capability& p) { return capability_covers(p, child); });
    if (!is_covered) {
      return invalid(fmt::format("capability {} is not within the parent token's capabilities",
                                 display_capability(child)));
    }
  }
  if (not_before_s < parent.not_before_s || expires_s > parent.expires_s) {
    return invalid(fmt::format("validity [{}, {}) is not within the parent token's [{}, {})",
                               format_unix_time(not_before_s), format_unix_time(expires_s),
                               format_unix_time(parent.not_before_s),
                               format_unix_time(parent.expires_s)));
  }
  return {};
}

std::string sign_token(const SeedBytes& seed, const TokenSpec& spec, std::string_view parent) {
  ensure_sodium();
  KeyBytes public_key{};
  unsigned char secret_key[crypto_sign_SECRETKEYBYTES];
  ASPEN_ASSERT(crypto_sign_seed_keypair(public_key.data(), secret_key, seed.data()) == 0);

  authpb::TokenBody body;
  body.set_version(kTokenVersion);
  body.set_id(spec.id.data(), spec.id.size());
  body.set_issuer_key(public_key.data(), public_key.size());
  body.set_audience_key(spec.audience.data(), spec.audience.size());
  for (const Capability& c : spec.capabilities) {
    authpb::Capability* pb = body.add_capabilities();
    pb->set_action(action_to_proto(c.action));
    pb->set_prefix(c.prefix);
  }
  body.set_not_before_s(spec.not_before_s);
  body.set_expires_s(spec.expires_s);
  body.set_parent(std::string(parent));

  authpb::SignedToken signed_pb;
  ASPEN_ASSERT(body.SerializeToString(signed_pb.mutable_body()));
  std::string message;
  message.append(kSignatureContext).append(signed_pb.body());
  std::string signature(kSignatureSizeBytes, '\0');
  ASPEN_ASSERT(crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr,
                                    reinterpret_cast<const unsigned char*>(message.data()),
                                    message.size(), secret_key) == 0);
  sodium_memzero(secret_key, sizeof(secret_key));
  signed_pb.set_signature(std::move(signature));
  std::string out;
  ASPEN_ASSERT(signed_pb.SerializeToString(&out));
  return out;
}

std::string format_unix_time(uint64_t unix_s) {
  constexpr uint64_t kLastSecondOfYear9999 = 253402300799;
  if (unix_s > kLastSecondOfYear9999) return fmt::format("{}", unix_s);
  // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
  const int64_t days = static_cast<int64_t>(unix_s / 86400);
  const uint64_t secs = unix_s % 86400;
  const int64_t z = days + 719468;
  const int64_t era = z / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z ({})", year, month, day, secs / 3600,
                     secs / 60 % 60, secs % 60, unix_s);
}

std::string hex(const uint8_t* data, size_t size) {
  return to_hex(std::string_view(reinterpret_cast<const char*>(data), size));
}

std::string escape_bytes(std::string_view bytes, size_t max_shown_bytes) {
  std::string shown;
  for (const char ch : bytes.substr(0, max_shown_bytes)) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\') {
      shown.push_back(ch);
    } else {
      shown += fmt::format("\\x{:02x}", byte);
    }
  }
  if (bytes.size() > max_shown_bytes) shown += fmt::format("... ({} bytes)", bytes.size());
  return shown;
}

std::string display_capability(const Capability& capability) {
  if (!is_prefix_scoped(capability.action)) return format_capability(capability);
  constexpr size_t kMaxShownPrefixBytes = 128;
  return fmt::format("{}:{}", action_name(capability.action),
                     escape_bytes(capability.prefix, kMaxShownPrefixBytes));
}

}  // namespace aspen::auth::internal

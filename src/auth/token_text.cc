#include "auth/token_text.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>

#include "auth/internal/token_wire.h"
#include "core/limits.h"

namespace aspen::auth {
namespace {

constexpr int kBase64Variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
// Characters of base64 for a token at the size limit (the macro counts a terminating NUL).
constexpr size_t kMaxTokenTextBase64Chars =
    sodium_base64_ENCODED_LEN(limits::kMaxTokenSizeBytes, kBase64Variant) - 1;

std::unexpected<Error> invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

bool is_base64url(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '_';
}

bool is_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::string capability_list(const std::vector<Capability>& capabilities) {
  if (capabilities.empty()) return "(none)";
  std::string out;
  for (const Capability& c : capabilities) {
    if (!out.empty()) out += ' ';
    out += internal::display_capability(c);
  }
  return out;
}

}  // namespace

std::string encode_token_text(std::string_view token) {
  std::string out(kTokenTextPrefix);
  const size_t prefix_size = out.size();
  // The macro's length includes a terminating NUL, which sodium writes and we drop.
  out.resize(prefix_size + sodium_base64_ENCODED_LEN(token.size(), kBase64Variant));
  sodium_bin2base64(out.data() + prefix_size, out.size() - prefix_size,
                    reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                    kBase64Variant);
  out.pop_back();
  return out;
}

Result<std::string> decode_token_text(std::string_view text) {
  text = trimmed(text);
  if (!text.starts_with(kTokenTextPrefix)) {
    return invalid(
        fmt::format("not an Aspen token: expected text starting with '{}'", kTokenTextPrefix));
  }
  const std::string_view base64 = text.substr(kTokenTextPrefix.size());
  if (base64.empty())
    return invalid(fmt::format("token text has nothing after '{}'", kTokenTextPrefix));
  if (base64.size() > kMaxTokenTextBase64Chars) {
    return invalid(fmt::format(
        "token text is {} characters; a token of at most {} bytes takes at most {}", text.size(),
        limits::kMaxTokenSizeBytes, kTokenTextPrefix.size() + kMaxTokenTextBase64Chars));
  }
  // Checked here, not left to sodium: libsodium 1.0.18 decodes every byte >= 0x80 as '_'
  // (found by the token_verify fuzz target), which would make the text form non-canonical.
  const auto bad = std::find_if_not(base64.begin(), base64.end(), is_base64url);
  if (bad != base64.end()) {
    const size_t position = kTokenTextPrefix.size() + static_cast<size_t>(bad - base64.begin()) + 1;
    return invalid(fmt::format(
        "token text has a character that is not URL-safe base64 at position {}", position));
  }
  std::string out(base64.size() * 3 / 4 + 1, '\0');
  size_t out_size = 0;
  const char* end = base64.data();
  const int rc =
      sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), base64.data(),
                        base64.size(), nullptr, &out_size, &end, kBase64Variant);
  // Fails on a length no encoding has, or non-zero spare bits in the last character.
  if (rc != 0 || end != base64.data() + base64.size()) {
    return invalid("token text is not valid URL-safe base64 (truncated or corrupted?)");
  }
  out.resize(out_size);
  return out;
}

Result<std::string> inspect_token(std::string_view token) {
  if (token.size() > limits::kMaxTokenSizeBytes) {
    return invalid(fmt::format("token is {} bytes; the limit is {} bytes", token.size(),
                               limits::kMaxTokenSizeBytes));
  }
  auto chain = internal::decode_chain(token);
  if (!chain) return std::unexpected(chain.error());
  std::string out =
      "capability token: NOT VERIFIED (signatures, expiry and revocation were not checked)\n";
  out += fmt::format("chain depth:    {} ({})\n", chain->size(),
                     chain->size() == 1 ? "issued by the root key" : "delegated");
  for (size_t i = 0; i < chain->size(); ++i) {
    const internal::TokenLevel& level = (*chain)[i];
    const bool is_last = i + 1 == chain->size();
    out += fmt::format(
        "level {}{}:\n", i + 1,
        i == 0 ? " (claims the root key as issuer)" : (is_last ? " (the presented token)" : ""));
    out += fmt::format("  id:           {}\n", internal::hex(level.id));
    out += fmt::format("  issuer:       {}\n", internal::hex(level.issuer));
    out += fmt::format("  audience:     {}\n", internal::hex(level.audience));
    out += fmt::format("  capabilities: {}\n", capability_list(level.capabilities));
    out += fmt::format("  not before:   {}\n", internal::format_unix_time(level.not_before_s));
    out += fmt::format("  expires:      {}\n", internal::format_unix_time(level.expires_s));
  }
  return out;
}

}  // namespace aspen::auth

// Node identity: an Ed25519 key pair whose public half is the node's network address.
//
// Every Aspen node owns one secret key, kept in data_dir/node.key (created on first start with
// mode 0600; a key file readable by group or others is refused). Peers are named and pinned
// by their 32-byte public key, printed as lowercase RFC 4648 base32 without padding (52
// characters). The transport proves possession of the secret key in every TLS handshake.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace aspen::transport {

inline constexpr size_t kPublicKeySizeBytes = 32;
inline constexpr size_t kSecretSeedSizeBytes = 32;
inline constexpr size_t kChannelBindingSizeBytes = 32;
// What both ends of one authenticated connection, and no one else, know (Connection::channel_binding).
using ChannelBinding = std::array<uint8_t, kChannelBindingSizeBytes>;

class PublicKey {
 public:
  PublicKey() = default;
  explicit PublicKey(const std::array<uint8_t, kPublicKeySizeBytes>& bytes) : bytes_(bytes) {}

  // Parses the base32 form produced by to_string().
  static Result<PublicKey> parse(std::string_view base32);

  const std::array<uint8_t, kPublicKeySizeBytes>& bytes() const noexcept { return bytes_; }
  std::string to_string() const;
  // The first 10 characters of to_string(), for log lines.
  std::string short_string() const { return to_string().substr(0, 10); }

  friend auto operator<=>(const PublicKey&, const PublicKey&) = default;

 private:
  std::array<uint8_t, kPublicKeySizeBytes> bytes_{};
};

// The secret half plus its public key. Copyable on purpose (tests spin up many endpoints);
// the seed is wiped on destruction.
class NodeIdentity {
 public:
  // A fresh random identity (tests, tools).
  static NodeIdentity generate();
  // Derives the key pair from a 32-byte RFC 8032 seed.
  static NodeIdentity from_seed(const std::array<uint8_t, kSecretSeedSizeBytes>& seed);

  NodeIdentity(const NodeIdentity&) = default;
  NodeIdentity& operator=(const NodeIdentity&) = default;
  ~NodeIdentity();

  const PublicKey& public_key() const noexcept { return public_key_; }
  const std::array<uint8_t, kSecretSeedSizeBytes>& seed() const noexcept { return seed_; }

 private:
  NodeIdentity() = default;
  std::array<uint8_t, kSecretSeedSizeBytes> seed_{};
  PublicKey public_key_;
};

// Loads data_dir/node.key, or creates it (mode 0600) when it does not exist. Fails with
// Unauthorized if the file is accessible by group or others, Corruption if it is malformed.
Result<NodeIdentity> load_or_create_identity(const std::string& data_dir);
// The same for a key file anywhere (a client's identity, an operator's root key): loads it,
// or creates it (mode 0600, the directory must exist) when it does not exist.
Result<NodeIdentity> load_or_create_identity_file(const std::string& path);
// Reads an existing key file (same checks).
Result<NodeIdentity> read_identity_file(const std::string& path);
// Writes a new key file, mode 0600; fails if the file exists (never overwrites a key).
Status write_identity_file(const std::string& path, const NodeIdentity& identity);

// RFC 4648 base32, lowercase, no padding.
std::string base32_encode(const uint8_t* data, size_t size);
Result<std::string> base32_decode(std::string_view text);

}  // namespace aspen::transport

template <>
struct std::hash<aspen::transport::PublicKey> {
  size_t operator()(const aspen::transport::PublicKey& k) const noexcept {
    size_t h = 0;
    for (size_t i = 0; i < sizeof(size_t); ++i) h = (h << 8) | k.bytes()[i];
    return h;
  }
};

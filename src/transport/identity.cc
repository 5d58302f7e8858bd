#include "transport/identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/encoding.h"

namespace aspen::transport {
namespace {

constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::string_view kKeyFileName = "node.key";
// The file holds the seed as 64 hex characters and a newline: readable in an emergency,
// and a truncated or edited file is detected by the length and alphabet checks.
constexpr size_t kKeyFileSizeBytes = 2 * kSecretSeedSizeBytes + 1;

void ensure_sodium() {
  static const int rc = sodium_init();
  ASPEN_ASSERT_MSG(rc >= 0, "libsodium failed to initialise");
}

Result<std::array<uint8_t, kSecretSeedSizeBytes>> parse_key_file(std::string_view text) {
  if (text.size() != kKeyFileSizeBytes || text.back() != '\n') {
    return make_error(ErrorCode::kCorruption, "node.key: expected 64 hex characters and a newline");
  }
  std::array<uint8_t, kSecretSeedSizeBytes> seed{};
  for (size_t i = 0; i < kSecretSeedSizeBytes; ++i) {
    unsigned value = 0;
    for (size_t j = 0; j < 2; ++j) {
      const char c = text[2 * i + j];
      unsigned nibble = 0;
      if (c >= '0' && c <= '9') nibble = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') nibble = static_cast<unsigned>(c - 'a' + 10);
      else return make_error(ErrorCode::kCorruption, "node.key: not hexadecimal");
      value = value * 16 + nibble;
    }
    seed[i] = static_cast<uint8_t>(value);
  }
  return seed;
}

Result<NodeIdentity> read_key_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kUnavailable, fmt::format("open {}: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return make_error(ErrorCode::kUnavailable, fmt::format("stat {}: {}", path, std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return make_error(ErrorCode::kUnauthorized,
                      fmt::format("{} is accessible by group or others (mode {:o}); run chmod 600", path,
                                  st.st_mode & 0777));
  }
  char buf[kKeyFileSizeBytes + 1];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n < 0) return make_error(ErrorCode::kUnavailable, fmt::format("read {}: {}", path, std::strerror(errno)));
  auto seed = parse_key_file(std::string_view(buf, static_cast<size_t>(n)));
  sodium_memzero(buf, sizeof(buf));
  if (!seed) return std::unexpected(seed.error());
  return NodeIdentity::from_seed(*seed);
}

Status write_key_file(const std::string& path, const NodeIdentity& id) {
  // O_EXCL: never overwrite a key that appeared concurrently; 0600 before any byte is written.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorCode::kUnavailable, fmt::format("create {}: {}", path, std::strerror(errno)));
  std::string text;
  for (uint8_t b : id.seed()) text += fmt::format("{:02x}", b);
  text += '\n';
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  sodium_memzero(text.data(), text.size());
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return make_error(ErrorCode::kUnavailable, fmt::format("write {}: {}", path, std::strerror(errno)));
  }
  // The file's directory entry too: after a power loss the node must come back with the key
  // its peers recorded, not quietly generate another.
  const std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool is_dir_synced = dfd >= 0 && ::fsync(dfd) == 0;
  if (dfd >= 0) ::close(dfd);
  if (!is_dir_synced) {
    return make_error(ErrorCode::kUnavailable, fmt::format("sync the directory of {}: {}", path, std::strerror(errno)));
  }
  return {};
}

}  // namespace

std::string base32_encode(const uint8_t* data, size_t size) {
  std::string out;
  out.reserve((size * 8 + 4) / 5);
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < size; ++i) {
    buffer = (buffer << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

Result<std::string> base32_decode(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const size_t v = kAlphabet.find(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    if (v == std::string_view::npos) return make_error(ErrorCode::kInvalidArgument, "not base32");
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<char>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  // Leftover bits must be zero padding, or two spellings would decode to one key.
  if (bits >= 5 || (buffer & ((1u << bits) - 1)) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "not canonical base32");
  }
  return out;
}

Result<PublicKey> PublicKey::parse(std::string_view base32) {
  auto bytes = base32_decode(base32);
  if (!bytes) return std::unexpected(bytes.error());
  if (bytes->size() != kPublicKeySizeBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("public key must be {} bytes, got {}", kPublicKeySizeBytes, bytes->size()));
  }
  std::array<uint8_t, kPublicKeySizeBytes> raw{};
  std::memcpy(raw.data(), bytes->data(), raw.size());
  return PublicKey(raw);
}

std::string PublicKey::to_string() const { return base32_encode(bytes_.data(), bytes_.size()); }

NodeIdentity NodeIdentity::generate() {
  ensure_sodium();
  std::array<uint8_t, kSecretSeedSizeBytes> seed{};
  randombytes_buf(seed.data(), seed.size());
  NodeIdentity id = from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return id;
}

NodeIdentity NodeIdentity::from_seed(const std::array<uint8_t, kSecretSeedSizeBytes>& seed) {
  ensure_sodium();
  static_assert(crypto_sign_SEEDBYTES == kSecretSeedSizeBytes);
  static_assert(crypto_sign_PUBLICKEYBYTES == kPublicKeySizeBytes);
  std::array<uint8_t, kPublicKeySizeBytes> pk{};
  uint8_t sk[crypto_sign_SECRETKEYBYTES];
  ASPEN_ASSERT(crypto_sign_seed_keypair(pk.data(), sk, seed.data()) == 0);
  sodium_memzero(sk, sizeof(sk));
  NodeIdentity id;
  id.seed_ = seed;
  id.public_key_ = PublicKey(pk);
  return id;
}

NodeIdentity::~NodeIdentity() { sodium_memzero(seed_.data(), seed_.size()); }

Result<NodeIdentity> load_or_create_identity(const std::string& data_dir) {
  if (data_dir.empty()) return make_error(ErrorCode::kInvalidArgument, "data_dir is empty");
  return load_or_create_identity_file(data_dir + "/" + std::string(kKeyFileName));
}

Result<NodeIdentity> load_or_create_identity_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return read_key_file(path);
  if (errno != ENOENT) {
    return make_error(ErrorCode::kUnavailable, fmt::format("stat {}: {}", path, std::strerror(errno)));
  }
  NodeIdentity id = NodeIdentity::generate();
  if (auto st_write = write_key_file(path, id); !st_write) {
    // Lost a race with another creator: use the key it wrote.
    if (::stat(path.c_str(), &st) == 0) return read_key_file(path);
    return std::unexpected(st_write.error());
  }
  return id;
}

Result<NodeIdentity> read_identity_file(const std::string& path) { return read_key_file(path); }

Status write_identity_file(const std::string& path, const NodeIdentity& identity) {
  return write_key_file(path, identity);
}

}  // namespace aspen::transport

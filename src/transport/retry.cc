#include "transport/internal/retry.h"

#include <ngtcp2/ngtcp2_crypto.h>

#include <algorithm>
#include <cstring>

#include "core/assert.h"

namespace aspen::transport::internal {

RetryTokens::RetryTokens(std::span<const uint8_t, kSecretBytes> secret) {
  std::copy(secret.begin(), secret.end(), secret_);
}

bool RetryTokens::carries_retry_token(const ngtcp2_pkt_hd& hd) noexcept {
  return hd.token.len > 0 && hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY;
}

std::vector<uint8_t> RetryTokens::make_token(const PeerAddr& client, const ngtcp2_cid& retry_scid,
                                             const ngtcp2_cid& odcid, uint32_t version, uint64_t now_ns) const {
  std::vector<uint8_t> token(NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN);
  const ngtcp2_ssize n = ngtcp2_crypto_generate_retry_token(
      token.data(), secret_, sizeof(secret_), version, reinterpret_cast<const ngtcp2_sockaddr*>(&client.addr),
      client.len, &retry_scid, &odcid, now_ns);
  ASPEN_ASSERT(n > 0 && static_cast<size_t>(n) <= token.size());
  token.resize(static_cast<size_t>(n));
  return token;
}

std::optional<ngtcp2_cid> RetryTokens::check_token(std::span<const uint8_t> token, const PeerAddr& client,
                                                   const ngtcp2_cid& dcid, uint32_t version, uint64_t now_ns) const {
  if (token.empty() || token[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) return std::nullopt;
  ngtcp2_cid odcid{};
  const int rv = ngtcp2_crypto_verify_retry_token(&odcid, token.data(), token.size(), secret_, sizeof(secret_), version,
                                                  reinterpret_cast<const ngtcp2_sockaddr*>(&client.addr), client.len,
                                                  &dcid, kLifetimeNs, now_ns);
  if (rv != 0) return std::nullopt;
  return odcid;
}

size_t RetryTokens::write_retry(std::span<uint8_t> buf, const ngtcp2_pkt_hd& hd, const ngtcp2_cid& retry_scid,
                                const PeerAddr& client, uint64_t now_ns) const {
  const std::vector<uint8_t> token = make_token(client, retry_scid, hd.dcid, hd.version, now_ns);
  // Addressed to the client's SCID; `hd.dcid` is echoed as the original DCID, which the
  // Retry's integrity tag covers.
  const ngtcp2_ssize n = ngtcp2_crypto_write_retry(buf.data(), buf.size(), hd.version, &hd.scid, &retry_scid, &hd.dcid,
                                                   token.data(), token.size());
  return n > 0 ? static_cast<size_t>(n) : 0;
}

}  // namespace aspen::transport::internal

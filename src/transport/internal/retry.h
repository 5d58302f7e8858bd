// Address validation with Retry (RFC 9000 §8.1.2) (internal).
//
// A server that answers a client's first Initial with a Retry makes the client prove it
// receives datagrams at its source address before any handshake state is created: the
// Retry carries an encrypted token (the client's address, our new connection ID, the
// client's original DCID and the time), and only an Initial that echoes a valid token from
// the same address gets a connection. Spoofed Initials then cost one small stateless reply
// each instead of a connection and a TLS handshake (with an Ed25519 signature) each.
// Tokens are sealed with a key derived from the node key, so they survive nothing but the
// node itself, and expire after kLifetimeNs.
#pragma once

#include <ngtcp2/ngtcp2.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "transport/internal/quic_connection.h"

namespace aspen::transport::internal {

class RetryTokens {
 public:
  // The client uses a token within one round trip of receiving it; the slack covers a slow
  // path and a retransmitted Initial, and bounds how long a stolen token can be replayed.
  static constexpr uint64_t kLifetimeNs = 10 * NGTCP2_SECONDS;
  static constexpr size_t kSecretBytes = 32;

  explicit RetryTokens(std::span<const uint8_t, kSecretBytes> secret);

  // True if the Initial's token claims to be one of our Retry tokens (valid or not).
  static bool carries_retry_token(const ngtcp2_pkt_hd& hd) noexcept;

  std::vector<uint8_t> make_token(const PeerAddr& client, const ngtcp2_cid& retry_scid, const ngtcp2_cid& odcid,
                                  uint32_t version, uint64_t now_ns) const;
  // The client's original DCID if `token` was made by make_token for `client`, with
  // `dcid` (the Retry's SCID, now the client's DCID) and has not expired.
  std::optional<ngtcp2_cid> check_token(std::span<const uint8_t> token, const PeerAddr& client,
                                        const ngtcp2_cid& dcid, uint32_t version, uint64_t now_ns) const;
  // Writes a Retry answering the client Initial `hd` into `buf`; returns its size, or 0.
  // `retry_scid` is the connection ID the client must use from now on.
  size_t write_retry(std::span<uint8_t> buf, const ngtcp2_pkt_hd& hd, const ngtcp2_cid& retry_scid,
                     const PeerAddr& client, uint64_t now_ns) const;

 private:
  uint8_t secret_[kSecretBytes];
};

}  // namespace aspen::transport::internal

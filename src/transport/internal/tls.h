// GnuTLS side of the QUIC transport (internal): Ed25519 credentials and per-connection TLS
// sessions that pin the peer's public key and negotiate the ALPN.
//
// Both roles present a self-signed X.509 certificate for the node key; nothing is checked
// against a CA. What authenticates a peer is the pin: the TLS 1.3 CertificateVerify proves
// the peer holds the secret key of the certificate's public key, and the verify callback
// compares that key with the one the client dialled (the server accepts any Ed25519 key and
// reports it, so the protocol handler decides who may talk to it).
#pragma once

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "transport/identity.h"

namespace aspen::transport::internal {

// Credentials for one endpoint: the node's key and its certificate. Shared by all sessions.
class TlsContext {
 public:
  static Result<std::unique_ptr<TlsContext>> create(const NodeIdentity& identity);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  gnutls_certificate_credentials_t credentials() const noexcept { return credentials_; }

 private:
  TlsContext() = default;
  gnutls_certificate_credentials_t credentials_ = nullptr;
};

// One TLS session bound to one ngtcp2 connection. Must not move after init (GnuTLS and the
// ngtcp2 crypto glue keep pointers to it).
class TlsSession {
 public:
  TlsSession() = default;
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Client: offers `alpn` and accepts only a server holding `expected_peer` (any server's key
  // when it is the all-zero key: discovery probes, which learn the key from the handshake).
  Status init_client(const TlsContext& ctx, ngtcp2_conn* conn, const PublicKey& expected_peer,
                     const std::string& alpn);
  // Server: accepts one of `alpns` (a ClientHello without a known ALPN is refused) and
  // requires a client certificate with an Ed25519 key.
  Status init_server(const TlsContext& ctx, ngtcp2_conn* conn, std::vector<std::string> alpns);

  // Valid once the handshake has verified the peer's certificate.
  const std::optional<PublicKey>& peer_key() const noexcept { return peer_key_; }
  std::string selected_alpn() const;
  // The negotiated AEAD, e.g. "AES-128-GCM" (for logs).
  std::string cipher_name() const;
  // 32 bytes both ends derive from this TLS session's secrets (RFC 8446 §7.5 exporter) and
  // nobody else can: a proof that covers them cannot be replayed on another connection.
  // Valid once the handshake completed; all zeros before (or if the export failed).
  std::array<uint8_t, kChannelBindingSizeBytes> export_channel_binding() const;
  // Why the peer's identity was refused, or empty.
  const std::string& refusal() const noexcept { return refusal_; }

 private:
  static ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref);
  static int verify_peer(gnutls_session_t session);
  static int on_client_hello(gnutls_session_t session, unsigned type, unsigned when, unsigned incoming,
                             const gnutls_datum_t* msg);
  Status init_common(const TlsContext& ctx, ngtcp2_conn* conn, unsigned flags);

  ngtcp2_crypto_conn_ref conn_ref_{};
  ngtcp2_conn* conn_ = nullptr;
  gnutls_session_t session_ = nullptr;
  std::optional<PublicKey> expected_peer_;
  std::optional<PublicKey> peer_key_;
  std::vector<std::string> alpns_;
  std::string refusal_;
};

}  // namespace aspen::transport::internal

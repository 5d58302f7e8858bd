#include "transport/internal/tls.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <sodium.h>

#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "core/assert.h"

namespace aspen::transport::internal {
namespace {

// TLS 1.3 only, Ed25519 signatures only. QUIC forbids middlebox compatibility mode
// (RFC 9001 §8.4) and cannot use AES-CCM-8, hence the explicit cipher list.
constexpr const char* kPriority =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:-SIGN-ALL:+SIGN-EDDSA-ED25519:"
    "%DISABLE_TLS13_COMPAT_MODE";

constexpr time_t kCertValiditySeconds = time_t{20} * 365 * 24 * 3600;

Status gnutls_status(int rc, const char* what) {
  if (rc >= 0) return {};
  return make_error(ErrorCode::kInternal, fmt::format("{}: {}", what, gnutls_strerror(rc)));
}

gnutls_datum_t datum(const uint8_t* data, size_t size) {
  return gnutls_datum_t{const_cast<uint8_t*>(data), static_cast<unsigned>(size)};
}

// Builds a self-signed certificate for `key`. Validity and names are irrelevant to peers
// (they pin the key), but must be well-formed for GnuTLS to send the certificate.
Status make_self_signed(gnutls_x509_privkey_t key, gnutls_x509_crt_t crt) {
  uint8_t serial[16];
  gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
  serial[0] &= 0x7f;  // a positive INTEGER
  const time_t now = std::time(nullptr);
  const char* cn = "aspen-node";
  if (auto s = gnutls_status(gnutls_x509_crt_set_version(crt, 3), "crt version"); !s) return s;
  if (auto s = gnutls_status(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), "crt serial"); !s) return s;
  if (auto s = gnutls_status(gnutls_x509_crt_set_activation_time(crt, now - 24 * 3600), "crt time"); !s) return s;
  if (auto s = gnutls_status(gnutls_x509_crt_set_expiration_time(crt, now + kCertValiditySeconds), "crt time"); !s)
    return s;
  if (auto s = gnutls_status(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, std::strlen(cn)),
                             "crt dn");
      !s)
    return s;
  if (auto s = gnutls_status(
          gnutls_x509_crt_set_issuer_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, std::strlen(cn)), "crt dn");
      !s)
    return s;
  if (auto s = gnutls_status(gnutls_x509_crt_set_key(crt, key), "crt key"); !s) return s;
  if (auto s = gnutls_status(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), "crt constraints"); !s) return s;
  if (auto s = gnutls_status(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), "crt usage"); !s)
    return s;
  // PureEdDSA ignores the digest argument.
  return gnutls_status(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_UNKNOWN, 0), "crt sign");
}

// Extracts the Ed25519 public key from the peer's leaf certificate.
Result<PublicKey> peer_ed25519_key(gnutls_session_t session) {
  unsigned count = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &count);
  if (certs == nullptr || count == 0) return make_error(ErrorCode::kUnauthorized, "peer sent no certificate");
  if (gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509) {
    return make_error(ErrorCode::kUnauthorized, "peer certificate is not X.509");
  }
  gnutls_x509_crt_t crt = nullptr;
  gnutls_pubkey_t pubkey = nullptr;
  gnutls_datum_t x{}, y{};
  gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
  Result<PublicKey> out = make_error(ErrorCode::kUnauthorized, "peer certificate is malformed");
  if (gnutls_x509_crt_init(&crt) >= 0 && gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0 &&
      gnutls_pubkey_init(&pubkey) >= 0 && gnutls_pubkey_import_x509(pubkey, crt, 0) >= 0) {
    if (gnutls_pubkey_export_ecc_raw2(pubkey, &curve, &x, &y, 0) < 0 || curve != GNUTLS_ECC_CURVE_ED25519 ||
        x.size != kPublicKeySizeBytes) {
      out = make_error(ErrorCode::kUnauthorized, "peer key is not Ed25519");
    } else {
      std::array<uint8_t, kPublicKeySizeBytes> raw{};
      std::memcpy(raw.data(), x.data, raw.size());
      out = PublicKey(raw);
    }
  }
  gnutls_free(x.data);
  gnutls_free(y.data);
  if (pubkey != nullptr) gnutls_pubkey_deinit(pubkey);
  if (crt != nullptr) gnutls_x509_crt_deinit(crt);
  return out;
}

}  // namespace

Result<std::unique_ptr<TlsContext>> TlsContext::create(const NodeIdentity& identity) {
  std::unique_ptr<TlsContext> ctx(new TlsContext());
  gnutls_x509_privkey_t key = nullptr;
  gnutls_x509_crt_t crt = nullptr;
  const auto& pub = identity.public_key().bytes();
  const auto& seed = identity.seed();
  gnutls_datum_t x = datum(pub.data(), pub.size());
  gnutls_datum_t k = datum(seed.data(), seed.size());
  Status st = gnutls_status(gnutls_x509_privkey_init(&key), "privkey init");
  if (st) st = gnutls_status(gnutls_x509_privkey_import_ecc_raw(key, GNUTLS_ECC_CURVE_ED25519, &x, nullptr, &k),
                             "import Ed25519 key");
  if (st) st = gnutls_status(gnutls_x509_crt_init(&crt), "crt init");
  if (st) st = make_self_signed(key, crt);
  if (st) st = gnutls_status(gnutls_certificate_allocate_credentials(&ctx->credentials_), "credentials");
  if (st) st = gnutls_status(gnutls_certificate_set_x509_key(ctx->credentials_, &crt, 1, key), "set key");
  if (crt != nullptr) gnutls_x509_crt_deinit(crt);
  if (key != nullptr) gnutls_x509_privkey_deinit(key);
  if (!st) return std::unexpected(st.error());
  return ctx;
}

TlsContext::~TlsContext() {
  if (credentials_ != nullptr) gnutls_certificate_free_credentials(credentials_);
}

TlsSession::~TlsSession() {
  if (session_ != nullptr) gnutls_deinit(session_);
}

ngtcp2_conn* TlsSession::get_conn(ngtcp2_crypto_conn_ref* ref) {
  return static_cast<TlsSession*>(ref->user_data)->conn_;
}

int TlsSession::verify_peer(gnutls_session_t session) {
  auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(gnutls_session_get_ptr(session));
  auto* self = static_cast<TlsSession*>(ref->user_data);
  auto key = peer_ed25519_key(session);
  if (!key) {
    self->refusal_ = key.error().message();
    return -1;
  }
  if (self->expected_peer_ &&
      sodium_memcmp(key->bytes().data(), self->expected_peer_->bytes().data(), kPublicKeySizeBytes) != 0) {
    self->refusal_ = fmt::format("peer presented key {}, expected {}", key->to_string(),
                                 self->expected_peer_->to_string());
    return -1;
  }
  self->peer_key_ = *key;
  return 0;
}

// RFC 9001 §8.1: a client that negotiates no application protocol is refused. GnuTLS's
// ALPN_MANDATORY only refuses a mismatching list, not a missing extension, hence this hook.
int TlsSession::on_client_hello(gnutls_session_t session, unsigned, unsigned, unsigned, const gnutls_datum_t*) {
  gnutls_datum_t selected{};
  if (gnutls_alpn_get_selected_protocol(session, &selected) != 0) return GNUTLS_E_NO_APPLICATION_PROTOCOL;
  return 0;
}

Status TlsSession::init_common(const TlsContext& ctx, ngtcp2_conn* conn, unsigned flags) {
  ASPEN_ASSERT(session_ == nullptr && conn != nullptr);
  conn_ = conn;
  conn_ref_.get_conn = &TlsSession::get_conn;
  conn_ref_.user_data = this;
  if (auto s = gnutls_status(gnutls_init(&session_, flags), "gnutls_init"); !s) return s;
  if (auto s = gnutls_status(gnutls_priority_set_direct(session_, kPriority, nullptr), "priority"); !s) return s;
  const bool is_server = (flags & GNUTLS_SERVER) != 0;
  const int rc = is_server ? ngtcp2_crypto_gnutls_configure_server_session(session_)
                           : ngtcp2_crypto_gnutls_configure_client_session(session_);
  if (rc != 0) return make_error(ErrorCode::kInternal, "ngtcp2 crypto session setup failed");
  // The session pointer belongs to the ngtcp2 crypto glue; our state hangs off conn_ref_.
  gnutls_session_set_ptr(session_, &conn_ref_);
  if (auto s = gnutls_status(gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, ctx.credentials()), "creds");
      !s)
    return s;
  gnutls_session_set_verify_function(session_, &TlsSession::verify_peer);
  std::vector<gnutls_datum_t> protos;
  for (const auto& a : alpns_) protos.push_back(datum(reinterpret_cast<const uint8_t*>(a.data()), a.size()));
  const unsigned alpn_flags = GNUTLS_ALPN_MANDATORY | (is_server ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0);
  // With no protocol to offer, the ClientHello hook refuses every client.
  if (!protos.empty()) {
    if (auto s = gnutls_status(
            gnutls_alpn_set_protocols(session_, protos.data(), static_cast<unsigned>(protos.size()), alpn_flags),
            "alpn");
        !s)
      return s;
  }
  ngtcp2_conn_set_tls_native_handle(conn, session_);
  return {};
}

Status TlsSession::init_client(const TlsContext& ctx, ngtcp2_conn* conn, const PublicKey& expected_peer,
                               const std::string& alpn) {
  // The all-zero key pins nothing: a discovery probe of an address whose key it cannot know
  // yet (cluster/gossip.h), which learns the key from the handshake (Connection::peer_key)
  // and trusts nothing the peer says that its key has not signed.
  if (expected_peer != PublicKey()) expected_peer_ = expected_peer;
  alpns_ = {alpn};
  return init_common(ctx, conn, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA);
}

Status TlsSession::init_server(const TlsContext& ctx, ngtcp2_conn* conn, std::vector<std::string> alpns) {
  alpns_ = std::move(alpns);
  auto st = init_common(ctx, conn, GNUTLS_SERVER | GNUTLS_NO_END_OF_EARLY_DATA | GNUTLS_NO_AUTO_SEND_TICKET);
  if (!st) return st;
  gnutls_certificate_server_set_request(session_, GNUTLS_CERT_REQUIRE);
  gnutls_handshake_set_hook_function(session_, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_POST,
                                     &TlsSession::on_client_hello);
  return {};
}

std::string TlsSession::selected_alpn() const {
  gnutls_datum_t selected{};
  if (session_ == nullptr || gnutls_alpn_get_selected_protocol(session_, &selected) != 0) return {};
  return std::string(reinterpret_cast<const char*>(selected.data), selected.size);
}

std::string TlsSession::cipher_name() const {
  if (session_ == nullptr) return {};
  const char* name = gnutls_cipher_get_name(gnutls_cipher_get(session_));
  return name != nullptr ? name : "";
}

std::array<uint8_t, kChannelBindingSizeBytes> TlsSession::export_channel_binding() const {
  std::array<uint8_t, kChannelBindingSizeBytes> out{};
  if (session_ == nullptr) return out;
  static constexpr std::string_view kLabel = "EXPORTER-aspen-channel-binding";
  if (gnutls_prf_rfc5705(session_, kLabel.size(), kLabel.data(), 0, nullptr, out.size(),
                         reinterpret_cast<char*>(out.data())) != 0) {
    out.fill(0);
  }
  return out;
}

}  // namespace aspen::transport::internal

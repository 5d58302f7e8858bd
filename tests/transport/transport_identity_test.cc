// Node identity: key file creation, permissions, parsing; base32 names.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "transport/address_book.h"
#include "transport/identity.h"

namespace aspen::transport {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/aspen-identity-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(TransportIdentity, KeyFileIsCreatedOnceWithMode0600) {
  TempDir dir;
  auto first = load_or_create_identity(dir.path);
  ASSERT_TRUE(first) << first.error().to_string();
  struct stat st {};
  ASSERT_EQ(::stat((dir.path + "/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = load_or_create_identity(dir.path);
  ASSERT_TRUE(second);
  EXPECT_EQ(first->public_key(), second->public_key());
}

TEST(TransportIdentity, KeyFileReadableByOthersIsRefused) {
  TempDir dir;
  ASSERT_TRUE(load_or_create_identity(dir.path));
  ASSERT_EQ(::chmod((dir.path + "/node.key").c_str(), 0644), 0);
  auto id = load_or_create_identity(dir.path);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(id.error().message().find("chmod 600"), std::string::npos);
}

TEST(TransportIdentity, MalformedKeyFileIsCorruption) {
  TempDir dir;
  const std::string path = dir.path + "/node.key";
  std::ofstream(path) << "not a key\n";
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto id = load_or_create_identity(dir.path);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code(), ErrorCode::kCorruption);
}

TEST(TransportIdentity, SameSeedGivesSameKey) {
  std::array<uint8_t, kSecretSeedSizeBytes> seed{};
  seed[0] = 1;
  EXPECT_EQ(NodeIdentity::from_seed(seed).public_key(), NodeIdentity::from_seed(seed).public_key());
  EXPECT_NE(NodeIdentity::generate().public_key(), NodeIdentity::generate().public_key());
}

TEST(TransportIdentity, PublicKeyPrintsAsBase32AndParsesBack) {
  const PublicKey key = NodeIdentity::generate().public_key();
  const std::string text = key.to_string();
  EXPECT_EQ(text.size(), 52u);
  auto parsed = PublicKey::parse(text);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, key);
  EXPECT_FALSE(PublicKey::parse("abc"));
  EXPECT_FALSE(PublicKey::parse(text.substr(0, 51) + "1"));  // '1' is not base32
}

RC_GTEST_PROP(TransportBase32, RoundTrips, (const std::string& bytes)) {
  const std::string text = base32_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  auto back = base32_decode(text);
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == bytes);
}

TEST(TransportSocketAddr, ParsesV4AndV6) {
  auto v4 = SocketAddr::parse("127.0.0.1:7000");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->port, 7000);
  EXPECT_EQ(v4->to_string(), "127.0.0.1:7000");
  auto v6 = SocketAddr::parse("[::1]:9");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to_string(), "[::1]:9");
  EXPECT_FALSE(SocketAddr::parse("127.0.0.1"));
  EXPECT_FALSE(SocketAddr::parse("nohost:1"));
  EXPECT_FALSE(SocketAddr::parse("127.0.0.1:99999"));
}

// resolve() takes what parse() takes, and host names too (localhost: from /etc/hosts).
TEST(TransportSocketAddr, ResolveAcceptsLiteralsAndHostNames) {
  EXPECT_EQ(SocketAddr::resolve("10.1.2.3:7000")->to_string(), "10.1.2.3:7000");
  EXPECT_EQ(SocketAddr::resolve("[::1]:9")->to_string(), "[::1]:9");
  auto local = SocketAddr::resolve("localhost:7000");
  ASSERT_TRUE(local) << local.error().to_string();
  EXPECT_TRUE(local->ip == "127.0.0.1" || local->ip == "::1") << local->to_string();
  EXPECT_EQ(local->port, 7000);
  auto bad_port = SocketAddr::resolve("localhost:70000");
  ASSERT_FALSE(bad_port);
  EXPECT_NE(bad_port.error().message().find("bad port"), std::string::npos) << bad_port.error().message();
  EXPECT_FALSE(SocketAddr::resolve("localhost"));  // no port: no lookup
}

}  // namespace
}  // namespace aspen::transport

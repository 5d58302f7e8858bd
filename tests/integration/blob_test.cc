// Blobs on real aspen-node processes: added with the CLI, hashed as b3sum hashes them,
// replicated to every member once tagged and readable (verified) from each; GC keeps tagged
// blobs and removes the rest after the grace period, also while clients add, tag and untag;
// a damaged copy is never served and is fetched again from a holder; a node killed mid-import
// shows no partial blob.
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "blob/store/blob_store.h"
#include "cli_process.h"
#include "client/blob_client.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

namespace fs = std::filesystem;

std::string random_bytes(size_t size, uint64_t seed) {
  std::string s(size, '\0');
  std::mt19937_64 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

crypto::Blake3Hash hash_of(const std::string& bytes) { return crypto::blake3_hash(std::string_view(bytes)); }

class BlobClusterTest : public ::testing::Test {
 protected:
  void start_cluster(size_t n, const std::vector<std::string>& flags = {}) {
    for (uint64_t id = 1; id <= n; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_.path(), "blob-test-cookie");
      ASSERT_NO_FATAL_FAILURE(nodes_[id]->start(flags));
    }
    client_ = client_for(nodes_);
    ASSERT_NE(client_, nullptr);
    ASSERT_NO_FATAL_FAILURE(form_cluster(*client_, nodes_));
    auto t = client_->cluster_ticket();
    ASSERT_TRUE(t.has_value()) << t.error().to_string();
    ticket_ = *t;
    env_ = operator_env(dir_.path());
  }
  CliRun cli(std::vector<std::string> args, const std::string& stdin_path = "") {
    args.insert(args.begin(), {"--ticket", ticket_, "--timeout-ms", "20000"});
    return run_cli(args, dir_.path(), stdin_path, env_);
  }
  nlohmann::json cli_json(std::vector<std::string> args, int want_exit = 0) {
    args.insert(args.begin(), "--json");
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, want_exit) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out << r.err;
    return j;
  }
  std::string blob_dir(uint64_t node) const { return dir_.path() + "/node-" + std::to_string(node) + "/blobs"; }
  std::string b3sum(const std::string& path) {
    auto r = run_process({"/usr/bin/b3sum", "--no-names", path}, dir_.path(), "", {});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, 64);
  }
  size_t holders(const crypto::Blake3Hash& h) {
    auto st = client::blob_status(*client_, h);
    return st ? static_cast<size_t>(st->holders_size()) : 0;
  }
  Result<std::string> get(const crypto::Blake3Hash& h, uint64_t node, blob::ByteRange range = {0, UINT64_MAX}) {
    std::string out;
    client::BlobGetOptions o;
    o.target = client::Target{node};
    o.range = range;
    auto r = client::blob_get(*client_, h, o, [&](uint64_t, std::span<const uint8_t> d) -> Status {
      out.append(reinterpret_cast<const char*>(d.data()), d.size());
      return {};
    });
    if (!r) return std::unexpected(r.error());
    return out;
  }
  Result<clientpb::BlobAddResponse> add(const std::string& bytes, uint64_t node = 0) {
    size_t pos = 0;
    client::BlobAddOptions o;
    o.target = client::Target{node};
    return client::blob_add(*client_, [&](std::span<uint8_t> out) -> Result<size_t> {
      const size_t n = std::min(out.size(), bytes.size() - pos);
      std::memcpy(out.data(), bytes.data() + pos, n);
      pos += n;
      return n;
    }, o);
  }

  TempDir dir_;
  NodeMap nodes_;
  std::unique_ptr<client::Client> client_;
  std::string ticket_;
  std::map<std::string, std::string> env_;
};

TEST_F(BlobClusterTest, CliAddPrintsTheB3sumHashAndEveryMemberServesTheTaggedBlob) {
  if (!fs::exists("/usr/bin/b3sum")) GTEST_SKIP() << "b3sum (Debian package b3sum) is not installed";
  ASSERT_NO_FATAL_FAILURE(start_cluster(3));
  const std::string file = dir_.path() + "/input.bin";
  const std::string data = random_bytes((size_t{3} << 20) + 12345, 1);
  write_bytes(file, data);
  const std::string expected = b3sum(file);

  auto added = cli({"blob", "add", file, "--tag", "release", "--wait-replicas", "3", "--wait-timeout-s", "120"});
  ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
  EXPECT_EQ(added.out, expected + "\n");

  // Every member holds it verified and serves it, whole and in ranges.
  for (uint64_t node = 1; node <= 3; ++node) {
    const std::string out = dir_.path() + "/out-" + std::to_string(node);
    auto got = cli({"blob", "get", expected, "-o", out, "--node", std::to_string(node)});
    ASSERT_EQ(got.exit_code, 0) << got.err;
    EXPECT_TRUE(files_identical(file, out, dir_.path())) << "node " << node;
    EXPECT_EQ(b3sum(out), expected);
    auto part = cli({"blob", "get", expected, "--range", "1000..200000", "--node", std::to_string(node)});
    ASSERT_EQ(part.exit_code, 0) << part.err;
    EXPECT_EQ(part.out, data.substr(1000, 199000));
  }
  auto tail = cli({"blob", "get", expected, "--range", std::to_string(data.size() - 10) + ".."});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  EXPECT_EQ(tail.out, data.substr(data.size() - 10));

  auto st = cli_json({"blob", "status", expected});
  EXPECT_EQ(st["holders"], nlohmann::json({1, 2, 3}));
  EXPECT_EQ(st["tags"], nlohmann::json({"release"}));
  auto listed = cli_json({"blob", "list", "--node", "2"});
  ASSERT_EQ(listed["blobs"].size(), 1u);
  EXPECT_EQ(listed["blobs"][0]["hash"], expected);
  EXPECT_EQ(listed["blobs"][0]["size_bytes"], data.size());
  auto tags = cli_json({"blob", "tag", "list"});
  ASSERT_EQ(tags["tags"].size(), 1u);
  EXPECT_EQ(tags["tags"][0]["name"], "release");
  EXPECT_EQ(tags["tags"][0]["hash"], expected);

  // stdin, with --json; the same bytes again are the same blob.
  auto piped = cli({"--json", "blob", "add", "-"}, file);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  auto j = nlohmann::json::parse(piped.out);
  EXPECT_EQ(j["hash"], expected);
  EXPECT_EQ(j["was_present"], true);

  // Errors an operator can hit: a hash that is not one, a blob nobody holds, a bad range.
  EXPECT_EQ(cli({"blob", "get", "xyz"}).exit_code, 2);
  const std::string unknown = crypto::blake3_to_hex(hash_of("not stored anywhere"));
  EXPECT_EQ(cli({"blob", "get", unknown}).exit_code, 1);
  EXPECT_EQ(cli({"blob", "tag", "set", "t", unknown}).exit_code, 1);
  EXPECT_EQ(cli({"blob", "get", expected, "--range", "5..1"}).exit_code, 2);
  EXPECT_EQ(cli({"blob", "get", expected, "--range", std::to_string(data.size() + 1) + ".."}).exit_code, 4);
}

TEST_F(BlobClusterTest, GcRemovesUntaggedBlobsAfterTheGracePeriodAndKeepsTaggedOnes) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(1, {"--blob-gc-grace-s", "0"}));
  const std::string kept = random_bytes(100000, 2), dropped = random_bytes(50000, 3);
  auto a = add(kept);
  auto b = add(dropped);
  ASSERT_TRUE(a && b);
  const auto ha = hash_of(kept), hb = hash_of(dropped);
  ASSERT_TRUE(client::blob_tag_set(*client_, "keep", ha).has_value());
  auto gc = cli_json({"blob", "gc"});
  ASSERT_EQ(gc["nodes"].size(), 1u);
  EXPECT_EQ(gc["nodes"][0]["removed"], 1);
  EXPECT_EQ(gc["nodes"][0]["kept_tagged"], 1);
  EXPECT_EQ(holders(hb), 0u);
  auto gone = get(hb, 1);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(*get(ha, 1), kept);
  // A tag for a blob no member holds is refused, so a tag never names nothing.
  auto refused = client::blob_tag_set(*client_, "late", hb);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kNotFound);
  // Untagged, it goes too.
  EXPECT_TRUE(*client::blob_tag_delete(*client_, "keep"));
  EXPECT_FALSE(*client::blob_tag_delete(*client_, "keep"));
  auto r = client::blob_gc(*client_, client::Target{1});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->removed(), 1u);
  EXPECT_EQ(holders(ha), 0u);
  EXPECT_TRUE(fs::is_empty(blob_dir(1) + "/data"));
}

TEST_F(BlobClusterTest, GcUnderConcurrentAddTagAndUntagNeverLeavesATagWithoutItsBlob) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(1, {"--blob-gc-grace-s", "0"}));
  std::atomic<bool> is_done{false};
  std::atomic<int> gc_runs{0};
  std::thread collector([&] {
    while (!is_done) {
      if (client::blob_gc(*client_, client::Target{1})) ++gc_runs;
    }
  });
  // Each round: add a blob, tag it (refused if GC took it first: then add and tag again),
  // untag every third one.
  std::map<std::string, std::string> tagged;  // tag -> bytes
  for (int i = 0; i < 30; ++i) {
    const std::string bytes = random_bytes(20000 + static_cast<size_t>(i), 100 + static_cast<uint64_t>(i));
    const std::string name = "t" + std::to_string(i);
    bool is_tagged = false;
    for (int attempt = 0; attempt < 20 && !is_tagged; ++attempt) {
      ASSERT_TRUE(add(bytes).has_value());
      auto s = client::blob_tag_set(*client_, name, hash_of(bytes));
      if (s) {
        is_tagged = true;
      } else {
        ASSERT_EQ(s.error().code(), ErrorCode::kNotFound) << s.error().to_string();
      }
    }
    ASSERT_TRUE(is_tagged);
    tagged[name] = bytes;
    if (i % 3 == 0) {
      ASSERT_TRUE(client::blob_tag_delete(*client_, name).has_value());
      tagged.erase(name);
    }
  }
  is_done = true;
  collector.join();
  EXPECT_GT(gc_runs.load(), 0);
  ASSERT_TRUE(client::blob_gc(*client_, client::Target{1}).has_value());
  // Every tag left names a blob that is held and reads back verified.
  auto tags = client::blob_tag_list(*client_);
  ASSERT_TRUE(tags.has_value());
  EXPECT_EQ(static_cast<size_t>(tags->tags_size()), tagged.size());
  for (const auto& [name, bytes] : tagged) {
    auto got = get(hash_of(bytes), 0);
    ASSERT_TRUE(got.has_value()) << name << ": " << got.error().to_string();
    EXPECT_EQ(*got, bytes);
  }
  // Untagged ones are gone after the last GC.
  auto list = client::blob_list(*client_, std::nullopt, 0, client::Target{1});
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(static_cast<size_t>(list->blobs_size()), tagged.size());
}

TEST_F(BlobClusterTest, DamagedCopyIsNeverServedAndIsFetchedAgainFromAHolder) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(3));
  const std::string data = random_bytes(300000, 4);
  const auto h = hash_of(data);
  ASSERT_TRUE(add(data, 1).has_value());
  ASSERT_TRUE(client::blob_tag_set(*client_, "pinned", h).has_value());
  ASSERT_TRUE(client::blob_wait_replicas(*client_, h, 3, 60000).has_value());
  // One flipped byte in node 2's copy.
  const std::string path = blob_dir(2) + "/data/" + crypto::blake3_to_hex(h) + ".data";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekp(200000);
    char c = static_cast<char>(data[200000] ^ 1);
    f.write(&c, 1);
  }
  // Read from node 2 alone: whatever comes out before the failure is the blob's true bytes.
  std::string out;
  client::BlobGetOptions o;
  o.target = client::Target{2};
  auto r = client::blob_get(*client_, h, o, [&](uint64_t off, std::span<const uint8_t> d) -> Status {
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()), std::string_view(data).substr(off, d.size()));
    out.append(reinterpret_cast<const char*>(d.data()), d.size());
    return {};
  });
  EXPECT_FALSE(r.has_value());
  EXPECT_LT(out.size(), data.size());
  // Node 2 dropped its copy and replication brought a good one back.
  ASSERT_TRUE(wait_until([&] {
    auto st = client::blob_status(*client_, h, client::Target{2});
    return st && st->is_stored_here() && st->holders_size() == 3;
  }, 60000)) << nodes_[2]->log();
  auto again = get(h, 2);
  ASSERT_TRUE(again.has_value()) << again.error().to_string();
  EXPECT_EQ(*again, data);
  auto metrics = client_->metrics_text(client::Target{2});
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->find("aspen_blob_corruptions_detected_total{node_id=\"2\"} 1"), std::string::npos) << *metrics;
}

TEST_F(BlobClusterTest, GetCutByABadHolderResumesFromTheVerifiedPrefixAtTheNextHolder) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(3));
  const std::string data = random_bytes(2 << 20, 5);
  const auto h = hash_of(data);
  ASSERT_TRUE(add(data, 1).has_value());
  ASSERT_TRUE(client::blob_tag_set(*client_, "pinned", h).has_value());
  ASSERT_TRUE(client::blob_wait_replicas(*client_, h, 3, 60000).has_value());
  // Node 1, the first holder a get tries, has a bad byte at a random point: its transfer is
  // cut there, and the get goes on at node 2 from the last verified group.
  std::mt19937_64 rng(::testing::UnitTest::GetInstance()->random_seed());
  const uint64_t bad = 100000 + rng() % (data.size() - 200000);
  {
    std::fstream f(blob_dir(1) + "/data/" + crypto::blake3_to_hex(h) + ".data", std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekp(static_cast<std::streamoff>(bad));
    char c = static_cast<char>(data[bad] ^ 0x80);
    f.write(&c, 1);
  }
  std::string out;
  uint64_t next = 0;
  auto r = client::blob_get(*client_, h, {}, [&](uint64_t off, std::span<const uint8_t> d) -> Status {
    EXPECT_EQ(off, next) << "bytes delivered twice or skipped";
    next = off + d.size();
    out.append(reinterpret_cast<const char*>(d.data()), d.size());
    return {};
  });
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(out, data) << "cut at byte " << bad;
  auto metrics = client_->metrics_text(client::Target{1});
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->find("aspen_blob_corruptions_detected_total{node_id=\"1\"} 1"), std::string::npos)
      << "node 1 did not serve (the get never met the cut)";
}

TEST_F(BlobClusterTest, HostileTransferRequestsAreAnsweredAndTheNodeStaysUp) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(1, {"--blob-max-size-bytes", "100000"}));
  // A stranger (no token) on the transfer ALPN: garbage, then a well-formed get.
  auto id = transport::NodeIdentity::generate();
  auto ep = transport::Endpoint::bind(id, transport::EndpointConfig{});
  ASSERT_TRUE(ep.has_value());
  const auto peer = nodes_[1]->ticket_peer();
  auto answer = [&](std::string first) -> clientpb::Response {
    auto conn = (*ep)->connect(peer.public_key, peer.addrs, client::kBlobAlpn);
    EXPECT_TRUE(conn.has_value());
    if (!conn) return {};
    auto st = conn->open_bi_with(std::move(first), false);
    EXPECT_TRUE(st.has_value());
    if (!st) return {};
    auto msg = st->recv();
    clientpb::Response r;
    EXPECT_TRUE(msg && *msg && r.ParseFromString(**msg));
    conn->close();
    return r;
  };
  auto garbage = answer(std::string("\xff\xfe\x00garbage", 10));
  EXPECT_EQ(garbage.error().code_name(), "InvalidArgument") << garbage.DebugString();
  clientpb::Request get;
  get.mutable_blob_get()->set_hash(std::string(32, 'h'));
  auto stranger = answer(get.SerializeAsString());
  EXPECT_EQ(stranger.error().code_name(), "Unauthorized") << stranger.DebugString();
  clientpb::Request status;
  status.mutable_blob_status();
  EXPECT_EQ(answer(status.SerializeAsString()).error().code_name(), "InvalidArgument");

  // The operator: a hash that is not one, and a blob over the node's size limit.
  clientpb::Request bad_hash;
  bad_hash.mutable_blob_get()->set_hash("short");
  auto ps = client_->open_protocol_stream(client::kBlobAlpn, bad_hash, client::Target{1}, 10000);
  ASSERT_TRUE(ps.has_value()) << ps.error().to_string();
  auto msg = ps->stream.recv();
  clientpb::Response r;
  ASSERT_TRUE(msg && *msg && r.ParseFromString(**msg));
  EXPECT_EQ(r.error().code_name(), "InvalidArgument");
  ps->conn.close();
  auto big = add(random_bytes(100001, 6));
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.error().message().find("blob_max_size_bytes"), std::string::npos) << big.error().to_string();
  EXPECT_TRUE(add(random_bytes(100000, 7)).has_value());
  EXPECT_TRUE(fs::is_empty(blob_dir(1) + "/tmp"));
  EXPECT_TRUE(client_->health(client::Target{1}).has_value());
}

TEST_F(BlobClusterTest, NodeKilledDuringAnImportShowsNoPartialBlob) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(1));
  // A source that sends 8 MiB and then waits until the node is gone.
  std::atomic<bool> is_killed{false};
  uint64_t sent = 0;
  std::thread adder([&] {
    (void)client::blob_add(*client_, [&](std::span<uint8_t> out) -> Result<size_t> {
      if (sent >= (uint64_t{8} << 20)) {
        while (!is_killed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return make_error(ErrorCode::kUnavailable, "the test stops here");
      }
      std::memset(out.data(), 0x5a, out.size());
      sent += out.size();
      return out.size();
    });
  });
  const std::string tmp = blob_dir(1) + "/tmp";
  ASSERT_TRUE(wait_until([&] {
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(tmp, ec)) {
      if (fs::file_size(f.path(), ec) >= (uint64_t{4} << 20)) return true;
    }
    return false;
  }, 30000));
  nodes_[1]->kill9();
  is_killed = true;
  adder.join();
  ASSERT_NO_FATAL_FAILURE(nodes_[1]->start());
  EXPECT_TRUE(fs::is_empty(tmp));
  EXPECT_TRUE(fs::is_empty(blob_dir(1) + "/data"));
  ASSERT_TRUE(wait_until([&] {
    auto l = client::blob_list(*client_, std::nullopt, 0, client::Target{1});
    return l && l->blobs_size() == 0;
  }, 20000));
}

}  // namespace
}  // namespace aspen::testing

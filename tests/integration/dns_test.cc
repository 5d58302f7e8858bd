// aspen-dns against a real 3-node cluster, asked with the real `dig` (bind9-dnsutils):
// every record type, wildcards, NXDOMAIN and NODATA with the SOA, REFUSED outside the zones,
// truncation over UDP and the retry over TCP, and a record changed with `aspen-cli dns set`
// then seen by dig. Records are managed only through aspen-cli, as an operator would.
// Skipped with a message when dig is not installed (scripts/setup.sh installs it).
#include <signal.h>

#include <filesystem>
#include <regex>

#include "cli_process.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

const char* kDig = "/usr/bin/dig";

class DnsTest : public ::testing::Test {
 protected:
  static inline SharedSetUp shared_;  // set_up_suite runs from the first SetUp (node_process.h)
  static void set_up_suite() {
    dir_ = new TempDir();
    for (uint64_t id = 1; id <= 3; ++id) {
      nodes_[id] = std::make_unique<NodeProcess>(id, dir_->path(), "dns-cookie-1");
      nodes_[id]->start();
    }
    auto c = client_for(nodes_);
    ASSERT_NE(c, nullptr);
    clientpb::InitClusterResponse init;
    ASSERT_NO_FATAL_FAILURE(form_cluster(*c, nodes_, &init));
    env_ = operator_env(dir_->path());
    env_["ASPEN_TICKET"] = init.ticket();
    ticket_ = init.ticket();
    // Zones and records, the way an operator makes them.
    cli_ok({"dns", "zone", "create", "example.test.", "--minimum", "30"});
    cli_ok({"dns", "zone", "create", "other.test."});
    cli_ok({"dns", "set", "www.example.test.", "A", "192.0.2.1", "192.0.2.2", "--ttl", "120"});
    cli_ok({"dns", "set", "www.example.test.", "AAAA", "2001:db8::1"});
    cli_ok({"dns", "set", "alias.example.test.", "CNAME", "www.example.test."});
    cli_ok({"dns", "set", "txt.example.test.", "TXT", "v=spf1 -all"});
    cli_ok({"dns", "set", "_sip._udp.example.test.", "SRV", "10 5 5060 sip.example.test."});
    cli_ok({"dns", "set", "example.test.", "MX", "10 mail.example.test."});
    cli_ok({"dns", "set", "example.test.", "NS", "ns1.example.test.", "ns2.example.test."});
    cli_ok({"dns", "set", "*.svc.example.test.", "A", "192.0.2.9"});
    cli_ok({"dns", "set", "host.a.b.example.test.", "A", "192.0.2.3"});
    cli_ok({"dns", "set", "big.example.test.", "TXT", std::string(900, 'a'), std::string(900, 'b')});
    // The server, on a free port, with the operator's identity and token.
    const std::string out = dir_->path() + "/aspen-dns.out";
    dns_pid_ = spawn({bin_path("aspen-dns"), "--listen", "127.0.0.1:0", "--ticket", ticket_, "--identity",
                      env_["ASPEN_IDENTITY"], "--token-file", env_["ASPEN_TOKEN_FILE"], "--log-level", "info"},
                     out, true);
    ASSERT_TRUE(wait_until([&] { return read_file(out).find("ASPEN_DNS_READY") != std::string::npos; }, 15000))
        << read_file(out);
    std::smatch m;
    const std::string text = read_file(out);
    ASSERT_TRUE(std::regex_search(text, m, std::regex("listen=127\\.0\\.0\\.1:([0-9]+)"))) << text;
    port_ = m[1];
  }
  static void TearDownTestSuite() {
    shared_ = {};
    if (dns_pid_ > 0) {
      ::kill(dns_pid_, SIGTERM);
      ::waitpid(dns_pid_, nullptr, 0);
      dns_pid_ = -1;
    }
    for (auto& [id, n] : nodes_) n->kill9();
    nodes_.clear();
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!std::filesystem::exists(kDig)) GTEST_SKIP() << "dig is not installed (apt-get install bind9-dnsutils; scripts/setup.sh)";
    ASPEN_SHARED_SET_UP(shared_, set_up_suite);
  }

  static CliRun cli(const std::vector<std::string>& args) { return run_cli(args, dir_->path(), "", env_); }
  static void cli_ok(const std::vector<std::string>& args) {
    auto r = cli(args);
    ASSERT_EQ(r.exit_code, 0) << args[1] << " " << args[2] << ": " << r.err << r.out;
  }
  // dig at aspen-dns; +norecurse since it is authoritative only. Returns dig's output.
  static std::string dig(const std::vector<std::string>& args) {
    std::vector<std::string> argv{kDig, "@127.0.0.1", "-p", port_, "+norecurse", "+time=5", "+tries=2"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, dir_->path(), "", {}).out;
  }
  static std::string status(const std::string& out) {
    std::smatch m;
    return std::regex_search(out, m, std::regex("status: ([A-Z]+)")) ? std::string(m[1]) : "";
  }
  static std::string flags(const std::string& out) {
    std::smatch m;
    return std::regex_search(out, m, std::regex("flags: ([a-z ]+);")) ? std::string(m[1]) : "";
  }
  static bool has_soa_authority(const std::string& out) {
    return std::regex_search(out, std::regex(";; AUTHORITY SECTION:\nexample\\.test\\.\\s+30\\s+IN\\s+SOA\\s+ns1\\.example\\.test\\."));
  }

  static TempDir* dir_;
  static NodeMap nodes_;
  static std::map<std::string, std::string> env_;
  static std::string ticket_;
  static std::string port_;
  static pid_t dns_pid_;
};
TempDir* DnsTest::dir_ = nullptr;
NodeMap DnsTest::nodes_;
std::map<std::string, std::string> DnsTest::env_;
std::string DnsTest::ticket_;
std::string DnsTest::port_;
pid_t DnsTest::dns_pid_ = -1;

TEST_F(DnsTest, DigGetsEveryRecordType) {
  auto a = dig({"www.example.test.", "A"});
  EXPECT_EQ(status(a), "NOERROR") << a;
  EXPECT_NE(flags(a).find("aa"), std::string::npos) << "authoritative: " << a;
  EXPECT_TRUE(std::regex_search(a, std::regex("www\\.example\\.test\\.\\s+120\\s+IN\\s+A\\s+192\\.0\\.2\\.1"))) << a;
  EXPECT_EQ(dig({"+short", "www.example.test.", "A"}), "192.0.2.1\n192.0.2.2\n");
  EXPECT_EQ(dig({"+short", "www.example.test.", "AAAA"}), "2001:db8::1\n");
  EXPECT_EQ(dig({"+short", "alias.example.test.", "CNAME"}), "www.example.test.\n");
  EXPECT_EQ(dig({"+short", "alias.example.test.", "A"}), "www.example.test.\n192.0.2.1\n192.0.2.2\n");
  EXPECT_EQ(dig({"+short", "txt.example.test.", "TXT"}), "\"v=spf1 -all\"\n");
  EXPECT_EQ(dig({"+short", "_sip._udp.example.test.", "SRV"}), "10 5 5060 sip.example.test.\n");
  EXPECT_EQ(dig({"+short", "example.test.", "MX"}), "10 mail.example.test.\n");
  EXPECT_EQ(dig({"+short", "example.test.", "NS"}), "ns1.example.test.\nns2.example.test.\n");
  const std::string soa = dig({"+short", "example.test.", "SOA"});
  EXPECT_TRUE(std::regex_match(soa, std::regex("ns1\\.example\\.test\\. hostmaster\\.example\\.test\\. [0-9]+ 3600 600 86400 30\n")))
      << soa;
}

TEST_F(DnsTest, DigSeesWildcardsNxdomainAndNodataWithTheSoa) {
  EXPECT_EQ(dig({"+short", "anything.svc.example.test.", "A"}), "192.0.2.9\n");
  EXPECT_EQ(dig({"+short", "x.y.svc.example.test.", "A"}), "192.0.2.9\n");
  auto nx = dig({"nope.example.test.", "A"});
  EXPECT_EQ(status(nx), "NXDOMAIN") << nx;
  EXPECT_NE(flags(nx).find("aa"), std::string::npos);
  EXPECT_TRUE(has_soa_authority(nx)) << nx;
  auto nodata = dig({"www.example.test.", "MX"});
  EXPECT_EQ(status(nodata), "NOERROR") << nodata;
  EXPECT_NE(nodata.find("ANSWER: 0"), std::string::npos) << nodata;
  EXPECT_TRUE(has_soa_authority(nodata)) << nodata;
  auto ent = dig({"b.example.test.", "A"});  // an empty non-terminal above host.a.b
  EXPECT_EQ(status(ent), "NOERROR") << ent;
  EXPECT_TRUE(has_soa_authority(ent)) << ent;
  auto wild_nodata = dig({"q.svc.example.test.", "TXT"});
  EXPECT_EQ(status(wild_nodata), "NOERROR") << wild_nodata;
  EXPECT_NE(wild_nodata.find("ANSWER: 0"), std::string::npos) << wild_nodata;
}

TEST_F(DnsTest, NamesOutsideTheZonesAreRefused) {
  auto r = dig({"www.example.com.", "A"});
  EXPECT_EQ(status(r), "REFUSED") << r;
  EXPECT_EQ(flags(r).find("aa"), std::string::npos);
  auto recursive = run_process({kDig, "@127.0.0.1", "-p", port_, "+recurse", "+time=5", "debian.org.", "A"}, dir_->path(), "", {}).out;
  EXPECT_EQ(status(recursive), "REFUSED") << "no open resolver: " << recursive;
}

TEST_F(DnsTest, ALargeAnswerIsTruncatedOverUdpAndWholeOverTcp) {
  // Without EDNS a UDP answer is at most 512 bytes: TC, and +ignore keeps dig from retrying.
  auto udp = dig({"+noedns", "+ignore", "big.example.test.", "TXT"});
  EXPECT_NE(flags(udp).find("tc"), std::string::npos) << udp;
  EXPECT_NE(udp.find("ANSWER: 0"), std::string::npos) << udp;
  // dig's own fallback: it sees TC and asks again over TCP.
  auto fallback = dig({"+noedns", "big.example.test.", "TXT"});
  EXPECT_NE(fallback.find("Truncated, retrying in TCP mode"), std::string::npos) << fallback;
  EXPECT_EQ(status(fallback), "NOERROR") << fallback;
  EXPECT_NE(fallback.find("ANSWER: 2"), std::string::npos) << fallback;
  EXPECT_NE(fallback.find(std::string(255, 'a')), std::string::npos) << "the TXT data itself";
  // And over TCP from the start, every type.
  EXPECT_EQ(dig({"+tcp", "+short", "www.example.test.", "A"}), "192.0.2.1\n192.0.2.2\n");
  EXPECT_NE(dig({"+tcp", "big.example.test.", "TXT"}).find("ANSWER: 2"), std::string::npos);
}

TEST_F(DnsTest, ARecordChangedWithTheCliIsSeenByDig) {
  cli_ok({"dns", "set", "moving.example.test.", "A", "192.0.2.10"});
  ASSERT_TRUE(wait_until([&] { return dig({"+short", "moving.example.test.", "A"}) == "192.0.2.10\n"; }, 20000));
  cli_ok({"dns", "set", "moving.example.test.", "A", "192.0.2.11"});
  EXPECT_TRUE(wait_until([&] { return dig({"+short", "moving.example.test.", "A"}) == "192.0.2.11\n"; }, 20000))
      << dig({"moving.example.test.", "A"});
  cli_ok({"dns", "delete", "moving.example.test."});
  EXPECT_TRUE(wait_until([&] { return status(dig({"moving.example.test.", "A"})) == "NXDOMAIN"; }, 20000));
  // A new zone is served once created.
  cli_ok({"dns", "zone", "create", "late.test."});
  cli_ok({"dns", "set", "x.late.test.", "TXT", "hello"});
  EXPECT_TRUE(wait_until([&] { return dig({"+short", "x.late.test.", "TXT"}) == "\"hello\"\n"; }, 20000));
}

TEST_F(DnsTest, TheCliRefusesBadRecordsWithClearErrors) {
  auto bad_ip = cli({"dns", "set", "www.example.test.", "A", "999.1.1.1"});
  EXPECT_EQ(bad_ip.exit_code, 4) << bad_ip.err;
  EXPECT_NE(bad_ip.err.find("IPv4 address"), std::string::npos) << bad_ip.err;
  auto bad_name = cli({"dns", "set", "bad name.example.test.", "A", "192.0.2.1"});
  EXPECT_EQ(bad_name.exit_code, 4) << bad_name.err;
  auto no_zone = cli({"dns", "set", "www.nowhere.test.", "A", "192.0.2.1"});
  EXPECT_EQ(no_zone.exit_code, 1) << no_zone.err;
  EXPECT_NE(no_zone.err.find("zone create"), std::string::npos) << no_zone.err;
  auto clash = cli({"dns", "set", "www.example.test.", "CNAME", "x.example.test."});
  EXPECT_EQ(clash.exit_code, 4) << clash.err;
  auto list = cli({"dns", "list", "example.test."});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("www.example.test.\t120\tIN\tA\t192.0.2.1"), std::string::npos) << list.out;
  auto zones = cli({"--json", "dns", "zone", "list"});
  EXPECT_NE(zones.out.find("\"example.test.\""), std::string::npos) << zones.out;
}

}  // namespace
}  // namespace aspen::testing

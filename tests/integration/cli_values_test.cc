// aspen-cli moves every value a user can store byte for byte: in from stdin and files, out
// to stdout (--raw) and files (-o), up to the 1 MiB value limit and refused past it before
// anything is sent; keys that are not text are given and listed in hex. Real aspen-cli and
// aspen-node processes; round trips are compared with cmp.
#include <sodium.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "core/limits.h"
#include "core/rng.h"

namespace aspen::testing {
namespace {

constexpr uint64_t kSeed = 20250611;

std::string random_bytes(Rng& rng, size_t n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng.uniform(256));
  return out;
}

// A byte string from `--json` output: text as is, or base64 when "<name>_encoding" says so.
std::string json_bytes(const nlohmann::json& obj, const std::string& name) {
  const std::string text = obj.at(name).get<std::string>();
  const std::string encoding = obj.at(name + "_encoding").get<std::string>();
  if (encoding == "utf8") return text;
  EXPECT_EQ(encoding, "base64");
  std::string out(text.size(), '\0');
  size_t size = 0;
  EXPECT_EQ(sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(),
                              nullptr, &size, nullptr, sodium_base64_VARIANT_ORIGINAL),
            0)
      << "not base64: " << text.substr(0, 80);
  out.resize(size);
  return out;
}

class CliValuesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nodes_[1] = std::make_unique<NodeProcess>(1, dir_.path(), "cli-values-cookie");
    ASSERT_NO_FATAL_FAILURE(nodes_[1]->start());
    auto c = client_for(nodes_);
    ASSERT_NE(c, nullptr);
    clientpb::InitClusterResponse init;
    ASSERT_NO_FATAL_FAILURE(form_cluster(*c, nodes_, &init));
    ticket_ = init.ticket();
    operator_env_ = operator_env(dir_.path());
  }

  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

  // aspen-cli with the cluster's ticket in the environment and stdin from `stdin_path`. HOME
  // is the test's directory, which holds no profile.
  CliRun cli(const std::vector<std::string>& args, const std::string& stdin_path = "") {
    auto env = operator_env_;
    env.insert({{"ASPEN_TICKET", ticket_}, {"ASPEN_CLI_TIMEOUT_MS", "15000"}, {"HOME", dir_.path()}});
    return run_cli(args, dir_.path(), stdin_path, env);
  }
  nlohmann::json cli_json(std::vector<std::string> args, int want_exit = 0) {
    args.insert(args.begin(), "--json");
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, want_exit) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out;
    return j;
  }
  // `kv get KEY --raw` compared with `expected_path` by cmp.
  void expect_raw_get_equals(const std::string& key, const std::string& expected_path) {
    auto got = cli({"kv", "get", key, "--raw"});
    ASSERT_EQ(got.exit_code, 0) << got.err;
    write_bytes(path("raw.out"), got.out);
    EXPECT_TRUE(files_identical(expected_path, path("raw.out"), dir_.path())) << key << ": --raw differs";
  }

  TempDir dir_;
  NodeMap nodes_;
  std::string ticket_;
  std::map<std::string, std::string> operator_env_;
};

TEST_F(CliValuesTest, BinaryValuesRoundTripByteForByteThroughStdinAndFiles) {
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  Rng rng(kSeed);
  for (size_t size : {size_t{0}, size_t{1}, size_t{127} << 10, size_t{129} << 10, limits::kMaxValueSizeBytes}) {
    SCOPED_TRACE("value of " + std::to_string(size) + " bytes");
    const std::string in = path("in.bin");
    write_bytes(in, random_bytes(rng, size));
    const std::string key = "values/" + std::to_string(size);

    // No value argument: stdin. Back out with --raw.
    auto set = cli({"kv", "set", key}, in);
    ASSERT_EQ(set.exit_code, 0) << set.err;
    ASSERT_NO_FATAL_FAILURE(expect_raw_get_equals(key, in));

    // --value-file, back out with -o.
    auto set_file = cli({"kv", "set", key + "/file", "--value-file", in});
    ASSERT_EQ(set_file.exit_code, 0) << set_file.err;
    auto get_file = cli({"kv", "get", key + "/file", "-o", path("o.out")});
    ASSERT_EQ(get_file.exit_code, 0) << get_file.err;
    EXPECT_EQ(get_file.out, "");
    EXPECT_TRUE(files_identical(in, path("o.out"), dir_.path())) << "-o differs";

    // "-" is stdin too; --json carries the bytes as base64 (or text).
    ASSERT_EQ(cli({"kv", "set", key + "/dash", "-"}, in).exit_code, 0);
    auto j = cli_json({"kv", "get", key + "/dash"});
    EXPECT_EQ(json_bytes(j["kv"], "value"), read_bytes(in)) << "--json differs";
  }
  // A text value still fits in an argument up to the kernel's 128 KiB per argument.
  std::string text(size_t{127} << 10, 'a');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + rng.uniform(26));
  write_bytes(path("text.in"), text);
  ASSERT_EQ(cli({"kv", "set", "values/argument", text}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(expect_raw_get_equals("values/argument", path("text.in")));
}

TEST_F(CliValuesTest, ValueOverTheLimitIsRefusedBeforeAnythingIsSent) {
  const std::string big = path("big.bin");
  write_bytes(big, std::string(limits::kMaxValueSizeBytes + 1, 'x'));
  ASSERT_EQ(cli({"kv", "set", "k", "small"}).exit_code, 0);
  struct Case {
    std::vector<std::string> args;
    bool is_stdin;
  };
  const std::vector<Case> cases{
      {{"kv", "set", "k"}, true},
      {{"kv", "set", "k", "-"}, true},
      {{"kv", "set", "k", "--value-file", big}, false},
      {{"kv", "cas", "k", "--value-file", big, "--expected", "small"}, false},
      {{"kv", "cas", "k", "new", "--expected-file", big}, false},
  };
  for (const auto& c : cases) {
    auto r = cli(c.args, c.is_stdin ? big : "");
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_NE(r.err.find("is 1048577 bytes; the limit is 1048576 (kMaxValueSizeBytes)"), std::string::npos) << r.err;
  }
  auto json = cli_json({"kv", "set", "k", "--value-file", big}, 4);
  EXPECT_EQ(json["error"]["code"], "ValueTooLarge") << json.dump();
  EXPECT_EQ(cli({"kv", "get", "k", "--raw"}).out, "small");

  write_bytes(path("q.bin"), std::string(limits::kMaxQueuePayloadBytes + 1, 'q'));
  auto q = cli({"queue", "push", "jobs", "--payload-file", path("q.bin")});
  EXPECT_EQ(q.exit_code, 4) << q.err;
  EXPECT_NE(q.err.find("(kMaxQueuePayloadBytes)"), std::string::npos) << q.err;
  EXPECT_EQ(cli({"queue", "len", "jobs"}).out, "0\n");

  // With the cluster gone the answer is the same, at once: nothing was going to be sent.
  nodes_[1]->kill9();
  auto offline = cli({"kv", "set", "k", "--value-file", big});
  EXPECT_EQ(offline.exit_code, 4) << offline.err;
}

TEST_F(CliValuesTest, TextStartingWith0xReadsBackAsItself) {
  ASSERT_EQ(cli({"kv", "set", "text", "0xdeadbeef"}).exit_code, 0);
  write_bytes(path("bin"), std::string("\xde\xad\xbe\xef", 4));
  ASSERT_EQ(cli({"kv", "set", "binary"}, path("bin")).exit_code, 0);

  EXPECT_EQ(cli({"kv", "get", "text"}).out, "0xdeadbeef\n");
  EXPECT_EQ(cli({"kv", "get", "text", "--raw"}).out, "0xdeadbeef");
  EXPECT_EQ(cli({"kv", "get", "binary", "--raw"}).out, std::string("\xde\xad\xbe\xef", 4));
  auto text = cli_json({"kv", "get", "text"});
  EXPECT_EQ(text["kv"]["value"], "0xdeadbeef");
  EXPECT_EQ(text["kv"]["value_encoding"], "utf8");
  auto binary = cli_json({"kv", "get", "binary"});
  EXPECT_EQ(binary["kv"]["value"], "3q2+7w==");
  EXPECT_EQ(binary["kv"]["value_encoding"], "base64");
  // The line for a human shows the binary value as hex, and says so on stderr.
  auto human = cli({"kv", "get", "binary"});
  EXPECT_EQ(human.out, "0xdeadbeef\n");
  EXPECT_NE(human.err.find("not valid UTF-8"), std::string::npos) << human.err;

  // -o with --json reports the key without the value; a missing key writes no file.
  auto meta = cli_json({"kv", "get", "binary", "-o", path("b.out")});
  EXPECT_EQ(meta["kv"]["value_size_bytes"], 4) << meta.dump();
  EXPECT_FALSE(meta["kv"].contains("value"));
  EXPECT_EQ(read_bytes(path("b.out")), std::string("\xde\xad\xbe\xef", 4));
  auto missing = cli({"kv", "get", "missing", "-o", path("missing.out")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_FALSE(std::filesystem::exists(path("missing.out")));
  EXPECT_EQ(cli({"kv", "get", "missing", "--raw"}).out, "");
}

TEST_F(CliValuesTest, KeysThatAreNotTextAreGivenAndListedInHex) {
  ASSERT_EQ(cli({"kv", "set", "--key-hex", "ff00", "binary key"}).exit_code, 0);
  ASSERT_EQ(cli({"kv", "set", "0xff00", "text key"}).exit_code, 0);
  EXPECT_EQ(cli({"kv", "get", "ff00", "--key-hex", "--raw"}).out, "binary key");
  EXPECT_EQ(cli({"kv", "get", "0xff00", "--raw"}).out, "text key");

  // --key-hex: the prefix is hex, and so is every key listed.
  EXPECT_EQ(cli({"kv", "scan", "ff", "--key-hex", "--keys-only"}).out, "ff00\n");
  EXPECT_EQ(cli({"kv", "scan", "30", "--key-hex", "--keys-only"}).out, "307866663030\n");  // "0xff00"
  // For a human both look alike, and a note says how to tell them apart.
  auto human = cli({"kv", "scan", "--keys-only"});
  EXPECT_NE(human.err.find("--key-hex"), std::string::npos) << human.err;
  // --json tells them apart by key_encoding.
  auto scan = cli_json({"kv", "scan"});
  std::map<std::string, std::string> values_by_key;
  for (const auto& kv : scan["kvs"]) values_by_key[json_bytes(kv, "key")] = json_bytes(kv, "value");
  EXPECT_EQ(values_by_key[std::string("\xff\x00", 2)], "binary key");
  EXPECT_EQ(values_by_key["0xff00"], "text key");

  EXPECT_EQ(cli({"kv", "delete", "ff00", "--key-hex"}).exit_code, 0);
  EXPECT_EQ(cli({"kv", "get", "ff00", "--key-hex"}).exit_code, 1);
  EXPECT_EQ(cli({"kv", "get", "0xff00", "--raw"}).out, "text key");
}

TEST_F(CliValuesTest, CasQueueTxnAndElectionTakeBinaryPayloads) {
  SCOPED_TRACE("seed " + std::to_string(kSeed + 1));
  Rng rng(kSeed + 1);
  // Both over 128 KiB: only stdin and files can carry them.
  write_bytes(path("old"), random_bytes(rng, size_t{200} << 10));
  write_bytes(path("new"), random_bytes(rng, size_t{300} << 10));
  ASSERT_EQ(cli({"kv", "set", "cert", "--value-file", path("old")}).exit_code, 0);
  auto swapped = cli({"kv", "cas", "cert", "--value-file", path("new"), "--expected-file", "-"}, path("old"));
  EXPECT_EQ(swapped.exit_code, 0) << swapped.out << swapped.err;
  ASSERT_NO_FATAL_FAILURE(expect_raw_get_equals("cert", path("new")));
  auto stale = cli({"kv", "cas", "cert", "--expected-file", path("old")}, path("old"));
  EXPECT_EQ(stale.exit_code, 1) << stale.err;
  ASSERT_NO_FATAL_FAILURE(expect_raw_get_equals("cert", path("new")));

  const std::string payload = random_bytes(rng, size_t{40} << 10);
  write_bytes(path("payload"), payload);
  auto push = cli({"queue", "push", "jobs"}, path("payload"));
  ASSERT_EQ(push.exit_code, 0) << push.err;
  auto pop = cli_json({"queue", "pop", "jobs"});
  ASSERT_EQ(pop["messages"].size(), 1u) << pop.dump();
  EXPECT_EQ(json_bytes(pop["messages"][0], "payload"), payload);

  // A transaction carries bytes as base64, the form --json prints them in.
  write_bytes(
      path("txn.json"),
      R"({"success":[{"put":{"key":"/wE=","key_encoding":"base64","value":"AAEC","value_encoding":"base64"}}]})");
  auto txn = cli({"kv", "txn", "--file", path("txn.json")});
  ASSERT_EQ(txn.exit_code, 0) << txn.out << txn.err;
  EXPECT_EQ(cli({"kv", "get", "ff01", "--key-hex", "--raw"}).out, std::string("\x00\x01\x02", 3));

  const std::string leader_value = random_bytes(rng, 100);
  write_bytes(path("leader"), leader_value);
  auto campaign = cli({"election", "campaign", "scheduler", "--candidate", "c1", "--value-file", path("leader")});
  ASSERT_EQ(campaign.exit_code, 0) << campaign.err;
  auto leader = cli_json({"election", "leader", "scheduler"});
  EXPECT_EQ(json_bytes(leader["leader"], "value"), leader_value);
}

TEST_F(CliValuesTest, ProfileAloneReachesTheCluster) {
  std::filesystem::create_directories(path("config/aspen"));
  write_bytes(path("config/aspen/prod.ticket"), ticket_ + "\n");
  write_bytes(path("config/aspen/cli.toml"), "ticket_file = \"prod.ticket\"\ntimeout_ms = 15000\n");
  // The key and token in their default places, next to the profile.
  write_operator_credentials(path("config/aspen/identity.key"), path("config/aspen/token"));
  const std::map<std::string, std::string> env{{"XDG_CONFIG_HOME", path("config")}, {"HOME", dir_.path()}};
  auto set = run_cli({"kv", "set", "from-profile", "yes"}, dir_.path(), "", env);
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(run_cli({"kv", "get", "from-profile", "--raw"}, dir_.path(), "", env).out, "yes");

  // Without the profile (or a flag, or ASPEN_TICKET) there is no ticket, and the error says
  // where one can come from.
  auto none = run_cli({"kv", "get", "from-profile"}, dir_.path(), "", {{"HOME", dir_.path()}});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("profile"), std::string::npos) << none.err;
}

}  // namespace
}  // namespace aspen::testing

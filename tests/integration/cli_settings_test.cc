// aspen-cli's own settings and shell integration, through the real binary and without a
// cluster: flags > environment > profile precedence (`config show`), the errors a user can
// make before anything is sent, and a completion script that knows every command.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli_process.h"

namespace aspen::testing {
namespace {

class CliSettingsTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

  // `config show --json` with `args` before it and exactly `env` as the environment.
  nlohmann::json show(std::vector<std::string> args, const std::map<std::string, std::string>& env) {
    args.insert(args.end(), {"config", "show", "--json"});
    auto r = run_cli(args, dir_.path(), "", env);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out;
    return j;
  }

  TempDir dir_;
};

// "ticket from <source> via <origin>", for readable failures.
std::string ticket_summary(const nlohmann::json& j) {
  return j["ticket"]["value"].dump() + " from " + j["ticket"]["source"].get<std::string>() + " via " +
         j["ticket"]["origin"].get<std::string>();
}

TEST_F(CliSettingsTest, FlagsBeatTheEnvironmentWhichBeatsTheProfile) {
  // Tickets are only strings here: `config show` does not decode them.
  std::filesystem::create_directories(path("xdg/aspen"));
  write_bytes(path("xdg/aspen/profile.ticket"), "aspen-from-profile-file\n");
  write_bytes(path("xdg/aspen/cli.toml"), "ticket_file = \"profile.ticket\"\ntimeout_ms = 3000\n");
  write_bytes(path("flag.ticket"), "aspen-from-flag-file");
  std::map<std::string, std::string> env{{"HOME", path("home")}, {"XDG_CONFIG_HOME", path("xdg")}};

  auto profile = show({}, env);
  EXPECT_EQ(profile["profile"]["path"], path("xdg/aspen/cli.toml"));
  EXPECT_EQ(profile["profile"]["found"], true);
  EXPECT_EQ(profile["ticket"]["value"], "aspen-from-profile-file") << ticket_summary(profile);
  EXPECT_EQ(profile["ticket"]["source"], "profile");
  EXPECT_EQ(profile["ticket"]["origin"], "ticket_file");
  EXPECT_EQ(profile["ticket"]["file"], path("xdg/aspen/profile.ticket"));
  EXPECT_EQ(profile["timeout_ms"]["value"], 3000);
  EXPECT_EQ(profile["timeout_ms"]["source"], "profile");

  env["ASPEN_TICKET"] = "aspen-from-env";
  env["ASPEN_CLI_TIMEOUT_MS"] = "2000";
  auto environment = show({}, env);
  EXPECT_EQ(environment["ticket"]["value"], "aspen-from-env") << ticket_summary(environment);
  EXPECT_EQ(environment["ticket"]["source"], "environment");
  EXPECT_EQ(environment["timeout_ms"]["value"], 2000);
  EXPECT_EQ(environment["timeout_ms"]["origin"], "ASPEN_CLI_TIMEOUT_MS");

  auto flags = show({"--ticket-file", path("flag.ticket"), "--timeout-ms", "1000"}, env);
  EXPECT_EQ(flags["ticket"]["value"], "aspen-from-flag-file") << ticket_summary(flags);
  EXPECT_EQ(flags["ticket"]["source"], "flag");
  EXPECT_EQ(flags["ticket"]["origin"], "--ticket-file");
  EXPECT_EQ(flags["timeout_ms"]["value"], 1000);
  EXPECT_EQ(flags["timeout_ms"]["source"], "flag");

  // Each setting on its own: a flag for the timeout leaves the ticket to the environment.
  auto mixed = show({"--timeout-ms", "1000"}, env);
  EXPECT_EQ(mixed["ticket"]["source"], "environment");
  EXPECT_EQ(mixed["timeout_ms"]["source"], "flag");

  // Nothing anywhere: the defaults.
  auto defaults = show({}, {{"HOME", path("home")}});
  EXPECT_EQ(defaults["profile"]["path"], path("home/.config/aspen/cli.toml"));
  EXPECT_EQ(defaults["profile"]["found"], false);
  EXPECT_EQ(defaults["ticket"]["source"], "none");
  EXPECT_EQ(defaults["timeout_ms"]["value"], 10000);
  EXPECT_EQ(defaults["timeout_ms"]["source"], "default");
}

TEST_F(CliSettingsTest, ProfileIsFoundByFlagThenVariableThenXdgThenHome) {
  for (const char* dir : {"a", "b", "xdg/aspen", "home/.config/aspen"}) std::filesystem::create_directories(path(dir));
  write_bytes(path("a/cli.toml"), "ticket = \"aspen-a\"\n");
  write_bytes(path("b/cli.toml"), "ticket = \"aspen-b\"\n");
  write_bytes(path("xdg/aspen/cli.toml"), "ticket = \"aspen-xdg\"\n");
  write_bytes(path("home/.config/aspen/cli.toml"), "ticket = \"aspen-home\"\n");
  std::map<std::string, std::string> env{{"HOME", path("home")}};
  EXPECT_EQ(show({}, env)["ticket"]["value"], "aspen-home");
  env["XDG_CONFIG_HOME"] = path("xdg");
  EXPECT_EQ(show({}, env)["ticket"]["value"], "aspen-xdg");
  env["ASPEN_CLI_CONFIG"] = path("b/cli.toml");
  auto by_variable = show({}, env);
  EXPECT_EQ(by_variable["ticket"]["value"], "aspen-b");
  EXPECT_EQ(by_variable["profile"]["origin"], "ASPEN_CLI_CONFIG");
  auto by_flag = show({"--config", path("a/cli.toml")}, env);
  EXPECT_EQ(by_flag["ticket"]["value"], "aspen-a");
  EXPECT_EQ(by_flag["profile"]["origin"], "--config");
}

TEST_F(CliSettingsTest, MistakesAreUsageErrorsNamingTheCulprit) {
  write_bytes(path("unknown.toml"), "tickt = \"aspen-x\"\n");
  write_bytes(path("malformed.toml"), "ticket = \n");
  write_bytes(path("both.toml"), "ticket = \"aspen-x\"\nticket_file = \"t\"\n");
  write_bytes(path("zero.toml"), "timeout_ms = 0\n");
  write_bytes(path("empty.ticket"), "\n");
  write_bytes(path("value"), "v");
  const std::map<std::string, std::string> home{{"HOME", path("home")}};
  auto with = [&](std::map<std::string, std::string> extra) {
    extra.insert(home.begin(), home.end());
    return extra;
  };
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string expected;  // a part of the message
  };
  const std::vector<Case> cases{
      {{"--config", path("nowhere.toml"), "config", "show"}, home, "does not exist"},
      {{"config", "show"}, with({{"ASPEN_CLI_CONFIG", path("nowhere.toml")}}), "ASPEN_CLI_CONFIG"},
      {{"--config", path("unknown.toml"), "config", "show"}, home, "unknown key 'tickt'"},
      {{"--config", path("malformed.toml"), "config", "show"}, home, "line 1"},
      {{"--config", path("both.toml"), "config", "show"}, home, "give only one"},
      {{"--config", path("zero.toml"), "config", "show"}, home, "timeout_ms"},
      {{"--ticket-file", path("nowhere.ticket"), "config", "show"}, home, "nowhere.ticket"},
      {{"--ticket-file", path("empty.ticket"), "config", "show"}, home, "is empty"},
      {{"config", "show"}, with({{"ASPEN_CLI_TIMEOUT_MS", "soon"}}), "ASPEN_CLI_TIMEOUT_MS"},
      {{"config", "show"}, with({{"ASPEN_TICKET", "aspen-x"}, {"ASPEN_CLI_TICKET_FILE", "t"}}), "give only one"},
      {{"--timeout-ms", "0", "config", "show"}, home, "--timeout-ms"},
      {{"--ticket", "aspen-x", "--ticket-file", "t", "config", "show"}, home, "--ticket"},
      {{"kv", "get", "k"}, home, "no cluster ticket"},
      {{"--ticket", "aspen-x", "kv", "get", "k", "--raw", "--json"}, home, "--raw"},
      {{"--ticket", "aspen-x", "kv", "get", "k", "--raw", "-o", path("out")}, home, "--raw"},
      {{"--ticket", "aspen-x", "kv", "set", "k", "--value-file", path("nowhere")}, home, "nowhere"},
      {{"--ticket", "aspen-x", "kv", "set", "k", "v", "--value-file", path("value")}, home, "--value-file"},
      {{"--ticket", "aspen-x", "kv", "set", "zz", "v", "--key-hex"}, home, "--key-hex"},
      {{"--ticket", "aspen-x", "kv", "cas", "k", "--expected-file", "-"}, home, "stdin"},
      {{"--ticket", "aspen-x", "kv", "cas", "k", "v"}, home, "--absent"},
      {{"--ticket", "aspen-x", "queue", "push", "q", "--payload-file", path("nowhere")}, home, "nowhere"},
  };
  for (const auto& c : cases) {
    std::string line;
    for (const auto& a : c.args) line += a + " ";
    auto r = run_cli(c.args, dir_.path(), "", c.env);
    EXPECT_EQ(r.exit_code, 2) << line << "\n" << r.out << r.err;
    EXPECT_NE((r.out + r.err).find(c.expected), std::string::npos)
        << line << ": the message should mention '" << c.expected << "': " << r.out << r.err;
  }
}

// The subcommands `aspen-cli <path> --help` lists, each as a full path ("kv get").
std::vector<std::string> subcommands_from_help(const std::string& help, const std::string& parent) {
  std::vector<std::string> out;
  std::istringstream in(help);
  std::string line;
  bool is_in_section = false;
  while (std::getline(in, line)) {
    if (line == "Subcommands:") {
      is_in_section = true;
    } else if (is_in_section && line.empty()) {
      break;
    } else if (is_in_section && line.starts_with("  ") && line[2] != ' ') {
      const std::string name = line.substr(2, line.find(' ', 2) - 2);
      out.push_back(parent.empty() ? name : parent + " " + name);
    }
  }
  return out;
}

TEST_F(CliSettingsTest, CompletionScriptCompletesEveryCommand) {
  // The command tree as --help shows it, walked independently of the completion generator.
  std::map<std::string, std::vector<std::string>> children;  // parent path -> child paths
  std::vector<std::string> pending{""};
  while (!pending.empty()) {
    const std::string parent = pending.back();
    pending.pop_back();
    std::vector<std::string> args;
    std::istringstream words(parent);
    for (std::string w; words >> w;) args.push_back(w);
    args.push_back("--help");
    auto help = run_cli(args, dir_.path(), "", {});
    ASSERT_EQ(help.exit_code, 0) << parent << ": " << help.err;
    for (const auto& child : subcommands_from_help(help.out, parent)) {
      children[parent].push_back(child);
      pending.push_back(child);
    }
  }
  ASSERT_GE(children[""].size(), 15u) << "the help walk found too few commands";
  ASSERT_EQ(children["completion"], std::vector<std::string>{"completion bash"});

  auto script = run_cli({"completion", "bash"}, dir_.path(), "", {});
  ASSERT_EQ(script.exit_code, 0) << script.err;
  write_bytes(path("completion.bash"), script.out);
  // Ask bash, with the script loaded, what it offers after each command that has subcommands.
  std::string driver = "source " + path("completion.bash") + "\n";
  for (const auto& [parent, kids] : children) {
    driver += "COMP_WORDS=(aspen-cli " + parent + " ''); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _aspen_cli; ";
    driver += "echo \"" + parent + ":${COMPREPLY[*]}\"\n";
  }
  write_bytes(path("driver.bash"), driver);
  auto offered = run_process({"/bin/bash", path("driver.bash")}, dir_.path(), "", {});
  ASSERT_EQ(offered.exit_code, 0) << offered.err;
  std::map<std::string, std::set<std::string>> offered_by_parent;
  std::istringstream lines(offered.out);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(':');
    std::istringstream words(line.substr(colon + 1));
    for (std::string w; words >> w;) offered_by_parent[line.substr(0, colon)].insert(w);
  }
  for (const auto& [parent, kids] : children) {
    for (const auto& kid : kids) {
      const std::string name = kid.substr(kid.rfind(' ') + 1);
      EXPECT_TRUE(offered_by_parent[parent].contains(name))
          << "'aspen-cli " << parent << " <TAB>' does not offer " << name;
    }
  }
  // Options too: global ones everywhere, a leaf's own, and file names after a PATH option.
  write_bytes(path("options.bash"),
              "source " + path("completion.bash") + "\n" +
                  "COMP_WORDS=(aspen-cli kv get --); COMP_CWORD=3; _aspen_cli; echo \"${COMPREPLY[*]}\"\n"
                  "COMP_WORDS=(aspen-cli kv set k --value-file " +
                  path("completion.ba") + "); COMP_CWORD=5; _aspen_cli; echo \"${COMPREPLY[*]}\"\n");
  auto options = run_process({"/bin/bash", path("options.bash")}, dir_.path(), "", {});
  for (const char* option : {"--raw", "--output", "--key-hex", "--ticket", "--config", "--timeout-ms"}) {
    EXPECT_NE(options.out.find(option), std::string::npos) << option << " not offered: " << options.out;
  }
  EXPECT_NE(options.out.find(path("completion.bash")), std::string::npos) << options.out;
}

}  // namespace
}  // namespace aspen::testing

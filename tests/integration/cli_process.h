// Test harness: real aspen-cli processes with a chosen stdin, environment and separate
// stdout and stderr, for byte-exact round trips and settings precedence.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "node_process.h"

namespace aspen::testing {

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout, byte for byte
  std::string err;  // stderr
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs `argv` (argv[0] a path) with stdin from `stdin_path` ("" = /dev/null) and exactly the
// variables in `env` (nothing inherited: the real HOME and ASPEN_* stay out of the test).
// stdout and stderr go to files under `dir`.
inline CliRun run_process(const std::vector<std::string>& argv, const std::string& dir, const std::string& stdin_path,
                          const std::map<std::string, std::string>& env) {
  const std::string out_path = dir + "/run.stdout";
  const std::string err_path = dir + "/run.stderr";
  pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<std::string> env_entries;
    for (const auto& [name, value] : env) env_entries.push_back(name + "=" + value);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_entries) envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CliRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_bytes(out_path);
  r.err = read_bytes(err_path);
  return r;
}

// aspen-cli with `args`; see run_process.
inline CliRun run_cli(const std::vector<std::string>& args, const std::string& dir, const std::string& stdin_path,
                      const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv{bin_path("aspen-cli")};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, dir, stdin_path, env);
}

// True when `cmp` finds the two files identical.
inline bool files_identical(const std::string& a, const std::string& b, const std::string& dir) {
  return run_process({"/usr/bin/cmp", a, b}, dir, "", {}).exit_code == 0;
}

}  // namespace aspen::testing

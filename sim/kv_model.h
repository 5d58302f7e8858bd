// The simulator's tiny replicated state machine: a map of string registers with client
// sessions for exactly-once application (Raft thesis §6.3), so a proposal that the network
// duplicates is applied once. Deterministic and serializable (snapshots).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/error.h"

namespace aspen::sim {

enum class CommandKind : uint8_t { kWrite = 1, kCas = 2 };

struct Command {
  CommandKind kind = CommandKind::kWrite;
  uint64_t client_id = 0;
  uint64_t seq = 0;  // strictly increasing per client
  std::string key;
  std::string value;
  std::optional<std::string> expected;  // kCas: nullopt = expects the key absent
};

std::string encode_command(const Command& c);
Result<Command> decode_command(std::string_view bytes);

struct ApplyResult {
  uint64_t client_id = 0;
  uint64_t seq = 0;
  bool cas_succeeded = false;
  bool is_duplicate = false;
};

class KvModel {
 public:
  // Applies a command. A (client, seq) at or below the client's last applied seq is a
  // duplicate: nothing changes, and the first application's result is returned.
  ApplyResult apply(const Command& c);
  std::optional<std::string> get(const std::string& key) const;

  std::string serialize() const;
  static Result<KvModel> deserialize(std::string_view bytes);
  // Order-independent of history: equal states hash equal.
  uint64_t hash() const;
  size_t size() const { return data_.size(); }

 private:
  struct Session {
    uint64_t seq = 0;
    bool cas_succeeded = false;
  };
  std::map<std::string, std::string> data_;
  std::map<uint64_t, Session> sessions_;
};

// FNV-1a, for cheap content fingerprints in invariant checks.
uint64_t fnv1a(std::string_view bytes, uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace aspen::sim

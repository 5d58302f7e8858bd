// Helpers shared by the storage tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "aspen/kv.pb.h"
#include "aspen/raft.pb.h"
#include "kv/command_hlc.h"
#include "kv/commands.h"
#include "storage/store.h"

namespace aspen::storage::testing {

// A fresh directory under the system temp dir, removed when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "aspen-test-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline pb::Entry put_entry(Index index, Term term, const std::string& key, const std::string& value) {
  kvpb::Command cmd;
  cmd.set_timestamp_ms(1000);
  cmd.mutable_put()->set_key(key);
  cmd.mutable_put()->set_value(value);
  pb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(cmd.SerializeAsString());
  return e;
}

// `e` (a normal entry holding a command) with the command stamped `t` (kv.proto Command.hlc).
inline pb::Entry with_hlc(pb::Entry e, const HlcTimestamp& t) {
  kvpb::Command cmd;
  EXPECT_TRUE(cmd.ParseFromString(e.data()));
  kv::to_proto(t, cmd.mutable_hlc());
  e.set_data(cmd.SerializeAsString());
  return e;
}

inline pb::ConfState voters(std::initializer_list<uint64_t> ids) {
  pb::ConfState cs;
  for (auto id : ids) cs.add_voters(id);
  return cs;
}

// Appends and commits entries [from, to] (puts of k<i> = v<i>) in one write.
inline Result<WriteOutcome> append_and_apply(Store& s, Index from, Index to, Term term) {
  std::vector<pb::Entry> ents;
  for (Index i = from; i <= to; ++i) ents.push_back(put_entry(i, term, "k" + std::to_string(i), "v" + std::to_string(i)));
  pb::HardState hs;
  hs.set_term(term);
  hs.set_commit(to);
  WriteBatch b;
  b.entries = &ents;
  b.hard_state = &hs;
  b.committed = &ents;
  return s.write(b);
}

inline std::optional<std::string> value_of(const Store& s, const std::string& key) {
  auto r = s.range(kv::key_range(key));
  if (!r || r->kvs_size() == 0) return std::nullopt;
  return r->kvs(0).value();
}

}  // namespace aspen::storage::testing

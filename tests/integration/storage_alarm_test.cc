// Storage full is an alarm, not a freeze: three real nodes with a small quota are filled
// until the alarm refuses writes; reads, deletes and Raft keep working; disarming while still
// over the quota does not stick; once space is freed and the alarm disarmed, writes resume
// on every member.
#include <gtest/gtest.h>

#include <chrono>

#include <fmt/format.h>

#include "cli_process.h"
#include "kv/key_value_store.h"
#include "node_process.h"

namespace aspen::testing {
namespace {

constexpr uint64_t kQuotaBytes = uint64_t{8} << 20;
constexpr size_t kValueBytes = 256 << 10;

uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Status put_status(client::Client& c, const std::string& key, const std::string& value) {
  auto r = kv::put(c, key, value);
  if (!r) return std::unexpected(r.error());
  return kv::result_status(*r);
}

TEST(StorageAlarm, FullStoreRaisesAnAlarmAndRecoversAfterDisarm) {
  TempDir dir;
  NodeMap nodes;
  for (uint64_t id = 1; id <= 3; ++id) {
    nodes[id] = std::make_unique<NodeProcess>(id, dir.path(), "alarm-cookie-1");
    nodes[id]->start({"--storage-max-bytes", "64MiB", "--storage-quota-bytes", std::to_string(kQuotaBytes)});
  }
  auto c = client_for(nodes);
  ASSERT_NE(c, nullptr);
  ASSERT_NO_FATAL_FAILURE(form_cluster(*c, nodes));

  // Fill until refused; the alarm must come well before the 64 MiB map is full.
  const std::string value(kValueBytes, 'v');
  size_t written = 0;
  uint64_t crossed_ms = 0;  // when the data written first passed the quota
  Error refusal(ErrorCode::kOk, "");
  for (; written < 200; ++written) {
    auto s = put_status(*c, fmt::format("fill/{:04}", written), value);
    if (!s) {
      refusal = s.error();
      break;
    }
    if (crossed_ms == 0 && (written + 1) * kValueBytes > kQuotaBytes) crossed_ms = wall_ms();
  }
  const uint64_t refused_ms = wall_ms();
  ASSERT_EQ(refusal.code(), ErrorCode::kStorageFull) << "wrote " << written << " values: " << refusal.to_string();
  EXPECT_LT(written * kValueBytes, uint64_t{48} << 20) << "the alarm came too late to protect the map";
  EXPECT_NE(refusal.message().find("alarm disarm"), std::string::npos) << refusal.message();

  auto alarms = c->alarm_list();
  ASSERT_TRUE(alarms) << alarms.error().to_string();
  ASSERT_FALSE(alarms->empty());
  for (const auto& a : *alarms) {
    EXPECT_TRUE(nodes.contains(a.member_id())) << a.ShortDebugString();
    EXPECT_GT(a.used_bytes(), kQuotaBytes) << a.ShortDebugString();
    EXPECT_EQ(a.quota_bytes(), kQuotaBytes);
  }
  // The number asked for: from the quota's crossing to the alarm (and to the first refusal).
  std::cout << "[ STORAGE  ] " << written << " values of " << kValueBytes / 1024
            << " KiB went in before the first refusal; alarm raised " << static_cast<int64_t>(alarms->front().raised_at_ms() - crossed_ms)
            << " ms after the crossing, first refusal " << refused_ms - crossed_ms << " ms after it\n";

  // Everything but growth keeps working: linearizable reads on every member, a lease grant
  // refused, a delete applied, the leader known.
  for (uint64_t id = 1; id <= 3; ++id) {
    auto r = c->read("fill/0000", clientpb::CONSISTENCY_LINEARIZABLE, client::Target{id});
    ASSERT_TRUE(r) << "node " << id << ": " << r.error().to_string();
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->value().size(), kValueBytes);
  }
  auto lease = kv::lease_grant(*c, 60000);
  ASSERT_FALSE(lease.has_value());
  EXPECT_EQ(lease.error().code(), ErrorCode::kStorageFull);
  auto del = kv::del(*c, "fill/0000");
  ASSERT_TRUE(del && del->deleted() == 1) << (del ? del->ShortDebugString() : del.error().to_string());
  EXPECT_TRUE(c->leader().has_value());

  // The operator's view, through the CLI.
  auto env = operator_env(dir.path());
  cluster::Ticket t;
  for (const auto& [id, n] : nodes) t.peers.push_back(n->ticket_peer());
  const std::string ticket = cluster::encode_ticket(t);
  auto listed = run_cli({"--ticket", ticket, "cluster", "alarm", "list"}, dir.path(), "", env);
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("NOSPACE"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("past its quota"), std::string::npos) << listed.out;
  auto status = run_cli({"--ticket", ticket, "cluster", "status"}, dir.path(), "", env);
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("STORAGE ALARM member"), std::string::npos) << status.out;

  // Disarmed while still over the quota: raised again, and writes stay refused.
  auto disarmed = c->alarm_disarm();
  ASSERT_TRUE(disarmed) << disarmed.error().to_string();
  EXPECT_FALSE(disarmed->empty());
  ASSERT_TRUE(wait_until([&] { auto l = c->alarm_list(); return l && !l->empty(); }, 10000))
      << "a member over its quota did not raise its alarm again";
  auto still = put_status(*c, "after-disarm", "x");
  ASSERT_FALSE(still.has_value());
  EXPECT_EQ(still.error().code(), ErrorCode::kStorageFull);

  // Space freed, then disarmed (with the CLI): writes resume on every member. A follower
  // that had not applied the deletes yet may raise its alarm once more, as a member over
  // its quota should; disarming again then sticks.
  for (size_t i = 1; i < written; ++i) ASSERT_TRUE(kv::del(*c, fmt::format("fill/{:04}", i)));
  bool is_resumed = wait_until(
      [&] {
        auto d = run_cli({"--ticket", ticket, "cluster", "alarm", "disarm"}, dir.path(), "", env);
        if (d.exit_code != 0 || !put_status(*c, "resumed", "yes").has_value()) return false;
        auto left = c->alarm_list();
        return left && left->empty();
      },
      20000);
  ASSERT_TRUE(is_resumed) << "writes did not resume after space was freed and the alarm disarmed";
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(wait_until(
        [&] {
          auto r = c->read("resumed", clientpb::CONSISTENCY_LINEARIZABLE, client::Target{id});
          return r && r->has_value();
        },
        10000))
        << "node " << id << " did not serve the write made after the alarm";
  }
}

}  // namespace
}  // namespace aspen::testing

// RaftLinks: the node's Raft traffic on ALPN "raft-auth", one component of the shell.
//
// Outbound, it keeps one stream per peer (dialled on demand, with backoff) and streams
// snapshots from a worker thread of its own; inbound, it checks every greeting and message
// and steps the core, and receives snapshots into staged files that the storage thread
// installs. The rules for received snapshots are SnapshotReception and StagedSnapshots
// (snapshot_staging.h), which the simulator runs too.
//
//   RaftLinks links(env, port);          // after the endpoint and store exist
//   links.send(ready_messages);          // [loop]
//   links.staged_snapshot(i, t);         // the data file of a snapshot the core installs
//   links.stop();                        // after the endpoint closed: joins "snap-send"
//
// Threads: everything on the loop, except the snapshot jobs on the "snap-send" worker, which
// touch only the store (a read transaction), their own stream and env.endpoint's post().
#pragma once

#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "node/internal/node_env.h"
#include "node/raft_stream_rules.h"
#include "node/snapshot_staging.h"
#include "node/worker.h"

namespace aspen::node::internal {

// A snapshot being received is written to <data dir>/<connection>-<stream><this>; leftovers
// from a stopped node are removed at start.
inline constexpr std::string_view kIncomingSnapshotExtension = ".incoming-snapshot";

class RaftLinks : public std::enable_shared_from_this<RaftLinks> {
 public:
  RaftLinks(NodeEnv& env, CorePort& port);
  RaftLinks(const RaftLinks&) = delete;
  RaftLinks& operator=(const RaftLinks&) = delete;

  // Sends a Ready's messages (MsgSnap as a snapshot stream, the rest on the peer's link).
  void send(std::vector<pb::Message>& msgs);  // [loop]
  // The endpoint's "raft-auth" handler. [loop]
  bool accept_connection(transport::Connection& conn);
  void on_message(transport::Stream& stream, std::string bytes);
  void on_stream_closed(transport::Stream& stream, const std::optional<Error>& error);
  // Members or their keys changed: links to a peer whose key changed are dropped. [loop]
  void on_peers_changed();
  // The transport found `key`'s address unreachable (its process is gone): Raft is told at
  // once, so a follower of that leader campaigns without waiting out its election timeout.
  void on_peer_unreachable(const transport::PublicKey& key);  // [loop]
  // The staged data file of the snapshot (index, term) the core asks to install; null if it
  // was never received on a snapshot stream. [loop]
  const std::string* staged_snapshot(Index index, Term term) const { return staged_.find(index, term); }
  // A snapshot at `index` was installed: its file and older ones are removed. [loop]
  void drop_staged_up_to(Index index);
  // Joins the snapshot sender; call after the endpoint closed (a blocked send fails at once).
  void stop();

 private:
  // A link to one peer (outbound; the peer dials us for its own messages).
  struct OutLink {
    transport::PublicKey key;
    std::optional<transport::Stream> stream;
    // The peer answered our greeting with its own proof of the cookie; until then nothing
    // but the greeting goes out, and messages wait in `queue`.
    bool is_proven = false;
    std::chrono::steady_clock::time_point proof_deadline{};
    bool is_connecting = false;
    uint64_t generation = 0;
    std::deque<std::string> queue;
    std::chrono::steady_clock::time_point retry_after{};
    uint32_t backoff_ms = 0;
    std::string last_dial_refusal;  // the last key refusal logged as a warning
  };
  // A snapshot stream being received: the rules' state and the file its chunks go to.
  struct Inbound {
    SnapshotReception reception;
    std::string path;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file{nullptr, &std::fclose};
  };
  using StreamKey = std::pair<uint64_t, int64_t>;  // (connection serial, stream id)

  // The facts a proof on `conn` is bound to, this node being the dialler or the acceptor.
  ChannelFacts dialled_facts(const transport::Connection& conn) const;
  ChannelFacts accepted_facts(const transport::Stream& stream) const;
  std::vector<std::string> own_addrs() const;
  void on_greeting_answer(NodeId to, uint64_t generation, transport::Stream& stream, std::string_view bytes);
  void flush_queue(OutLink& link);
  void send_one(NodeId to, std::string bytes);
  void dial(NodeId to);
  void on_dial_failed(NodeId to, uint64_t generation, const Error& e);
  void send_snapshot(NodeId to, pb::Message m);
  void on_snapshot_frame(transport::Stream& stream, const StreamKey& k, std::string_view bytes);
  void on_snapshot_end(transport::Stream& stream, Inbound in, NodeId from);
  void refuse(transport::Stream& stream, const StreamKey& k, std::string_view why);

  NodeEnv& env_;
  CorePort& port_;
  std::map<NodeId, OutLink> out_;              // [loop]
  std::map<StreamKey, NodeId> greeted_;        // [loop] inbound streams whose greeting was accepted
  std::map<StreamKey, Inbound> inbound_snapshots_;  // [loop]
  StagedSnapshots staged_;                     // [loop] data files, until installed
  std::set<NodeId> snapshots_in_flight_;       // [loop] one outgoing snapshot per peer
  // Streams snapshots to peers: blocking sends must not run on the loop.
  Worker snapshot_sender_;
};

}  // namespace aspen::node::internal

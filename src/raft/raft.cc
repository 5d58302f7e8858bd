// RaftCore: lifecycle, elections and message dispatch. Leader logic is in raft_leader.cc,
// the Ready/advance interface in raft_ready.cc.
#include "raft/raft.h"

#include <fmt/format.h>

#include "core/assert.h"
#include "core/buggify.h"
#include "core/log.h"

namespace aspen::raft {

namespace {
constexpr char kTransferContext[] = "transfer";

pb::MessageType vote_response_type(pb::MessageType t) {
  return t == pb::MSG_PRE_VOTE ? pb::MSG_PRE_VOTE_RESP : pb::MSG_VOTE_RESP;
}

bool is_local_message(pb::MessageType t) {
  return t == pb::MSG_HUP || t == pb::MSG_BEAT || t == pb::MSG_UNREACHABLE ||
         t == pb::MSG_SNAP_STATUS || t == pb::MSG_CHECK_QUORUM;
}
}  // namespace

const char* role_name(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

RaftCore::RaftCore(const RaftConfig& config, const LogStorage* storage)
    : id_(config.id),
      log_(storage, config.max_committed_size_per_ready_bytes),
      trk_(config.max_inflight_msgs),
      config_(config),
      rng_(config.seed ^ (config.id * 0x9e3779b97f4a7c15ULL)) {}

RaftCore::~RaftCore() = default;

Result<std::unique_ptr<RaftCore>> RaftCore::create(const RaftConfig& config,
                                                   const LogStorage* storage) {
  if (config.id == kNoNode) return make_error(ErrorCode::kConfigInvalid, "raft node id must be non-zero");
  if (config.heartbeat_tick == 0) return make_error(ErrorCode::kConfigInvalid, "heartbeat_tick must be > 0");
  if (config.election_tick <= config.heartbeat_tick) {
    return make_error(ErrorCode::kConfigInvalid, "election_tick must be greater than heartbeat_tick");
  }
  if (config.max_inflight_msgs == 0) {
    return make_error(ErrorCode::kConfigInvalid, "max_inflight_msgs must be > 0");
  }
  if (storage == nullptr) return make_error(ErrorCode::kConfigInvalid, "storage is required");

  std::unique_ptr<RaftCore> r(new RaftCore(config, storage));
  InitialState st = storage->initial_state();
  const pb::HardState& hs = st.hard_state;
  if (hs.commit() > r->log_.last_index()) {
    return make_error(ErrorCode::kCorruption,
                      fmt::format("stored commit index {} is beyond the last stored entry {}",
                                  hs.commit(), r->log_.last_index()));
  }
  r->switch_to_config(restore_conf_state(st.conf_state, r->log_.last_index(), config.max_inflight_msgs));
  r->load_state(hs);
  if (config.applied > 0) {
    if (config.applied > r->log_.committed()) {
      return make_error(ErrorCode::kCorruption, "applied index is beyond the commit index");
    }
    r->log_.applied_to(config.applied);
  }
  r->become_follower(r->term_, kNoNode);
  r->prev_soft_state_ = SoftState{r->lead_, r->role_};
  r->prev_hard_state_ = hs;
  return r;
}

void RaftCore::load_state(const pb::HardState& hs) {
  log_.commit_to(hs.commit());
  term_ = hs.term();
  vote_ = hs.vote();
}

// ------------------------------------------------------------------------------------------
// Role transitions

void RaftCore::reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_election_timeout();
  abort_leader_transfer();
  trk_.reset_votes();
  for (auto& [id, pr] : trk_.progress) {
    bool learner = pr.is_learner;
    pr = Progress(log_.last_index() + 1, trk_.max_inflight(), learner);
    if (id == id_) pr.match = log_.last_index();
  }
  pending_conf_index_ = 0;
  uncommitted_size_bytes_ = 0;
  should_bcast_append_ = false;
  should_bcast_read_heartbeat_ = false;
  // A leader that steps down can no longer vouch for its waiting reads: refuse them now
  // rather than let their requesters wait for a timeout.
  for (const auto& pr : pending_reads_) refuse_read(pr.request);
  for (const auto& held : pending_read_index_messages_) refuse_read(held.request);
  pending_reads_.clear();
  pending_read_index_messages_.clear();
  read_round_acked_.clear();
}

void RaftCore::reset_randomized_election_timeout() {
  // §5.2: randomized timeouts in [election, 2*election) make split votes rare.
  randomized_election_timeout_ =
      config_.election_tick + static_cast<uint32_t>(rng_.uniform(config_.election_tick));
}

void RaftCore::campaign_soon(uint32_t min_wait_ticks, bool may_postpone) {
  // A random wait keeps two nodes that act on the same news from campaigning together.
  const uint32_t spread = std::max<uint32_t>(1, std::min(config_.election_tick / 4, 2 * config_.heartbeat_tick));
  const uint32_t wait = std::min(randomized_election_timeout_, min_wait_ticks + static_cast<uint32_t>(rng_.uniform(spread)));
  const uint32_t elapsed = randomized_election_timeout_ - wait;
  election_elapsed_ = may_postpone ? elapsed : std::max(election_elapsed_, elapsed);
}

void RaftCore::heard_from_leader(NodeId leader) {
  election_elapsed_ = 0;
  lead_ = leader;
  fast_campaigns_left_ = 0;
}

void RaftCore::become_follower(Term term, NodeId lead) {
  const bool was_campaigning = role_ == Role::kCandidate || role_ == Role::kPreCandidate;
  reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
  if (lead != kNoNode) {
    fast_campaigns_left_ = 0;
  } else if (was_campaigning && fast_campaigns_left_ > 0) {
    // A campaign after our leader was reported unreachable was lost to rejections: retry
    // soon, at a new random tick.
    ASPEN_PROBE("raft.fast_campaign_retried");
    campaign_soon(1, false);
  }
}

void RaftCore::become_pre_candidate() {
  ASPEN_ASSERT_MSG(role_ != Role::kLeader, "leader cannot become pre-candidate");
  // §9.6: a pre-candidate changes neither its term nor its vote.
  trk_.reset_votes();
  role_ = Role::kPreCandidate;
  lead_ = kNoNode;
}

void RaftCore::become_candidate() {
  ASPEN_ASSERT_MSG(role_ != Role::kLeader, "leader cannot become candidate");
  reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void RaftCore::become_leader() {
  ASPEN_ASSERT_MSG(role_ != Role::kFollower, "follower must campaign before leading");
  reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  fast_campaigns_left_ = 0;
  Progress& self = trk_.progress.at(id_);
  self.become_replicate();
  // A leader always hears itself; without this the first CheckQuorum round would count it
  // as silent and a healthy leader with one follower down would step down.
  self.recent_active = true;
  // No conf change may be proposed until every entry of earlier terms is known committed.
  pending_conf_index_ = log_.last_index();
  // §5.4.2 / §8: a new leader commits an empty entry of its own term, which commits all
  // earlier entries indirectly and lets ReadIndex start.
  std::vector<pb::Entry> empty(1);
  bool ok = append_entries(empty);
  ASPEN_ASSERT_MSG(ok, "the empty leader entry must always be accepted");
  // The empty entry does not count against the uncommitted budget.
  uncommitted_size_bytes_ = 0;
  ASPEN_LOG_DEBUG("node {} became leader at term {}", id_, term_);
}

bool RaftCore::is_promotable() const {
  auto it = trk_.progress.find(id_);
  return it != trk_.progress.end() && !it->second.is_learner && !log_.unstable_snapshot();
}

bool RaftCore::has_unapplied_conf_change() const {
  if (log_.applied() >= log_.committed()) return false;
  auto ents = log_.slice(log_.applied() + 1, log_.committed() + 1, kNoLimit);
  if (!ents) return false;
  for (const auto& e : *ents) {
    if (e.type() == pb::ENTRY_CONF_CHANGE) return true;
  }
  return false;
}

// ------------------------------------------------------------------------------------------
// Ticks

void RaftCore::tick() {
  ++ticks_;
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void RaftCore::tick_election() {
  ++election_elapsed_;
  if (is_promotable() && is_past_election_timeout()) {
    election_elapsed_ = 0;
    hup(false);
  }
}

void RaftCore::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  // BUGGIFY: the checks below come early (after half an election timeout). Stepping down or
  // abandoning a transfer sooner is always safe; only availability suffers.
  const bool is_check_due = election_elapsed_ >= config_.election_tick ||
                            (election_elapsed_ >= config_.election_tick / 2 && ASPEN_BUGGIFY("raft.quorum_check_early"));
  if (is_check_due) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      // §6.2: step down if a quorum was not heard from during the last election timeout.
      if (!trk_.quorum_active()) {
        ASPEN_PROBE("raft.leader_stepped_down_no_quorum");
        ASPEN_LOG_DEBUG("node {} steps down at term {}: no quorum heard from", id_, term_);
        become_follower(term_, kNoNode);
        return;
      }
      for (auto& [id, pr] : trk_.progress) pr.recent_active = (id == id_);
    }
    // A transfer that did not finish within an election timeout is abandoned.
    abort_leader_transfer();
    if (!trk_.config.voters.contains(id_)) {
      step_down_after_removal();
      return;
    }
  }
  if (role_ != Role::kLeader) return;
  expire_reads();
  if (heartbeat_elapsed_ >= config_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    // While reads wait, every heartbeat is a confirmation round for them.
    if (pending_reads_.empty()) {
      bcast_heartbeat("");
    } else {
      bcast_read_round();
    }
  }
}

void RaftCore::step_down_after_removal() {
  // Hand over to the most up-to-date remaining voter at once rather than leave the cluster
  // waiting for an election timeout.
  NodeId best = kNoNode;
  Index best_match = 0;
  for (NodeId id : trk_.config.voters.ids()) {
    auto it = trk_.progress.find(id);
    if (it != trk_.progress.end() && it->second.match >= best_match) {
      best = id;
      best_match = it->second.match;
    }
  }
  if (best != kNoNode && best_match == log_.last_index()) send_timeout_now(best);
  ASPEN_PROBE("raft.leader_stepped_down_after_removal");
  ASPEN_LOG_DEBUG("node {} steps down: removed from the voters", id_);
  become_follower(term_, kNoNode);
}

// ------------------------------------------------------------------------------------------
// Elections

void RaftCore::campaign() { hup(false); }

void RaftCore::hup(bool is_transfer) {
  if (role_ == Role::kLeader) return;
  if (!is_promotable()) return;
  // A conf change that is committed but not applied might remove us or change the quorum.
  if (has_unapplied_conf_change()) {
    ASPEN_PROBE("raft.campaign_deferred_unapplied_conf_change");
    return;
  }
  campaign_internal(config_.pre_vote && !is_transfer, is_transfer);
}

void RaftCore::campaign_internal(bool is_pre_vote, bool is_transfer) {
  Term vote_term;
  pb::MessageType type;
  if (is_pre_vote) {
    become_pre_candidate();
    type = pb::MSG_PRE_VOTE;
    vote_term = term_ + 1;  // the term we would campaign in, without bumping ours yet
  } else {
    become_candidate();
    type = pb::MSG_VOTE;
    vote_term = term_;
  }
  if (fast_campaigns_left_ > 0) {
    // Our leader was reported unreachable. A (pre-)vote that neither wins nor is lost (two
    // candidates split the vote of a three-node cluster whose third member is the dead
    // leader: each waits for an answer that never comes) is abandoned after a heartbeat or
    // so and campaigned again, not after a whole election timeout. Bounded: each attempt
    // spends one, and hearing a leader ends them.
    --fast_campaigns_left_;
    campaign_soon(config_.heartbeat_tick, true);
  }
  if (poll(id_, vote_response_type(type), true) == VoteResult::kWon) {
    // A single-voter cluster wins at once.
    if (is_pre_vote) {
      campaign_internal(false, is_transfer);
    } else {
      become_leader();
    }
    return;
  }
  for (NodeId id : trk_.config.voters.ids()) {
    if (id == id_) continue;
    pb::Message m;
    m.set_type(type);
    m.set_to(id);
    m.set_term(vote_term);
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term());
    if (is_transfer) m.set_context(kTransferContext);
    send(std::move(m));
  }
}

VoteResult RaftCore::poll(NodeId from, pb::MessageType /*type*/, bool granted) {
  trk_.record_vote(from, granted);
  return trk_.tally_votes().result;
}

void RaftCore::handle_vote_request(const pb::Message& m) {
  // §5.2 one vote per term; §9.6 a pre-vote is granted for a future term without recording it.
  bool can_vote = vote_ == m.from() || (vote_ == kNoNode && lead_ == kNoNode) ||
                  (m.type() == pb::MSG_PRE_VOTE && m.term() > term_);
  // §5.4.1 election restriction: only a candidate whose log is at least as up to date as ours.
  bool is_up_to_date = log_.is_up_to_date(m.index(), m.log_term());
  pb::Message resp;
  resp.set_to(m.from());
  resp.set_type(vote_response_type(m.type()));
  if (can_vote && is_up_to_date) {
    // The response carries the candidate's term so a pre-candidate can count it.
    resp.set_term(m.term());
    resp.set_reject(false);
    if (m.type() == pb::MSG_VOTE) {
      election_elapsed_ = 0;
      vote_ = m.from();
    }
  } else {
    resp.set_term(term_);
    resp.set_reject(true);
    attach_commit(resp);
  }
  send(std::move(resp));
}

void RaftCore::attach_commit(pb::Message& rejection) const {
  rejection.set_commit(log_.committed());
  rejection.set_log_term(log_.term_or_zero(log_.committed()));
}

// A rejection carries the rejecter's commit index and that entry's term. "Entry (i, t) is
// committed" stays true forever (leader completeness, §5.4), and a log holding an entry
// (i, t) holds the same prefix up to i (log matching, §5.3), so the candidate may commit up
// to i without a leader. This is what lets an election finish after a leader removed
// itself: the remaining voters may have the removal in their logs without knowing it is
// committed, so they still count the removed node, whose longer log refuses them its vote
// (simulator seed 78275). Learning the commit lets them apply the removal and win alone.
void RaftCore::learn_commit_from_rejection(const pb::Message& m) {
  if (m.commit() <= log_.committed() || m.log_term() == 0) return;
  if (!log_.match_term(m.commit(), m.log_term())) return;
  log_.commit_to(m.commit());
}

// ------------------------------------------------------------------------------------------
// Dispatch

Status RaftCore::step(const pb::Message& msg) {
  if (is_local_message(msg.type())) {
    return make_error(ErrorCode::kInvalidArgument, "local message type received from the network");
  }
  if (msg.from() == kNoNode) return make_error(ErrorCode::kInvalidArgument, "message without a sender");
  if (msg.type() == pb::MSG_READ_INDEX && msg.context().empty()) {
    return make_error(ErrorCode::kInvalidArgument, "read index request without a context");
  }
  // Responses from nodes we do not track are stale (removed members): ignore them.
  bool is_response = msg.type() == pb::MSG_APP_RESP || msg.type() == pb::MSG_HEARTBEAT_RESP ||
                     msg.type() == pb::MSG_VOTE_RESP || msg.type() == pb::MSG_PRE_VOTE_RESP;
  if (is_response && !trk_.progress.contains(msg.from())) {
    ASPEN_PROBE("raft.response_from_untracked_ignored");
    return {};
  }
  if (auto s = check_remote_message(msg); !s) return s;
  return step_internal(msg);
}

// A peer may be buggy or hostile, and the asserts in this core guard its own invariants, not
// the network's: what a correct peer never sends is refused here, before any handler sees it.
// (Checks that depend on this node's log or leader are made where they are handled.)
Status RaftCore::check_remote_message(const pb::Message& m) const {
  auto refuse = [&m](std::string_view what) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} from node {} refused: {}", pb::MessageType_Name(m.type()), m.from(), what));
  };
  // Far beyond any real log; keeps index arithmetic (index + 1, index + entries) exact.
  constexpr Index kMaxIndex = Index{1} << 62;
  if (m.index() >= kMaxIndex || m.commit() >= kMaxIndex || m.snapshot().metadata().index() >= kMaxIndex) {
    return refuse("an index beyond any log");
  }
  switch (m.type()) {
    case pb::MSG_APP: {
      // §5.3: a leader sends a run of its own log after (index, log_term); no entry is of a
      // later term than the leader's, and terms never decrease along a log.
      if (m.log_term() > m.term()) return refuse("its previous entry is of a later term than the message");
      Index expected = m.index() + 1;
      Term previous = m.log_term();
      for (const auto& e : m.entries()) {
        if (e.index() != expected) return refuse("its entries do not follow its index one by one");
        if (e.term() < previous || e.term() > m.term()) return refuse("its entries' terms are out of order");
        previous = e.term();
        ++expected;
      }
      break;
    }
    case pb::MSG_VOTE:
    case pb::MSG_PRE_VOTE:
    case pb::MSG_VOTE_RESP:
    case pb::MSG_PRE_VOTE_RESP:
      // §5.2: a candidate campaigns in a term after its own, never in term 0; a granted
      // answer names that term. (Found by the raft_step fuzzer: a vote request of term 0 was
      // answered with term 0, which this core asserts it never sends.)
      if (m.term() == 0) return refuse("a vote message without a term");
      break;
    case pb::MSG_SNAP: {
      const auto& meta = m.snapshot().metadata();
      if (meta.index() == 0 || meta.term() == 0 || meta.term() > m.term()) {
        return refuse("its snapshot's index or term is impossible");
      }
      if (auto s = validate_conf_state(meta.conf_state()); !s) return refuse(s.error().message());
      break;
    }
    case pb::MSG_PROP:
      // Only a member forwards proposals (a removed node or a stranger never does).
      if (!trk_.progress.contains(m.from())) return refuse("proposals are taken only from members");
      break;
    case pb::MSG_TIMEOUT_NOW:
      // §3.10: only the leader hands over leadership, in its own term; anyone else asking
      // for an immediate election would just disrupt the cluster.
      if (m.from() != lead_ || m.term() != term_ || role_ == Role::kLeader) {
        return refuse("only the current leader may ask for an immediate election");
      }
      break;
    case pb::MSG_APP_RESP:
      // Within a term a leader's log only grows: nobody can acknowledge more than it holds.
      if (m.term() == term_ && role_ == Role::kLeader && !m.reject() && m.index() > log_.last_index()) {
        return refuse("it acknowledges entries this leader never had");
      }
      break;
    case pb::MSG_READ_INDEX_RESP:
      // A read point comes only from the leader this node forwarded the read to (which may
      // answer from a later term it also leads). One of an older term is dropped by the term
      // rule; a refusal may come from a leader that just stepped down, and only fails reads
      // early.
      if (!m.reject() && m.term() >= term_ && m.from() != lead_) {
        return refuse("a read point not from the leader");
      }
      break;
    default:
      break;
  }
  return {};
}

Status RaftCore::step_internal(const pb::Message& m) {
  // §5.1: terms act as logical clocks.
  if (m.term() == 0) {
    // local message or proposal
  } else if (m.term() > term_) {
    if (m.type() == pb::MSG_VOTE || m.type() == pb::MSG_PRE_VOTE) {
      bool is_force = m.context() == kTransferContext;
      bool is_in_lease = config_.check_quorum && lead_ != kNoNode &&
                         election_elapsed_ < config_.election_tick;
      // §4.2.3: a node that hears from a leader ignores disruptive vote requests.
      if (!is_force && is_in_lease) {
        ASPEN_PROBE("raft.vote_ignored_in_lease");
        return {};
      }
    }
    if (m.type() == pb::MSG_PRE_VOTE) {
      // Never change our term for a pre-vote.
    } else if (m.type() == pb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // Granted pre-votes carry the future term; the term is bumped on winning.
    } else if (m.type() == pb::MSG_APP || m.type() == pb::MSG_HEARTBEAT || m.type() == pb::MSG_SNAP) {
      become_follower(m.term(), m.from());
    } else {
      become_follower(m.term(), kNoNode);
    }
  } else if (m.term() < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type() == pb::MSG_HEARTBEAT || m.type() == pb::MSG_APP)) {
      // A stale leader (e.g. healed from a partition) learns the newer term and steps down;
      // without this it could stay stuck since pre-votes never raise our term.
      ASPEN_PROBE("raft.stale_leader_told_newer_term");
      pb::Message resp;
      resp.set_to(m.from());
      resp.set_type(pb::MSG_APP_RESP);
      send(std::move(resp));
    } else if (m.type() == pb::MSG_PRE_VOTE) {
      pb::Message resp;
      resp.set_to(m.from());
      resp.set_type(pb::MSG_PRE_VOTE_RESP);
      resp.set_term(term_);
      resp.set_reject(true);
      attach_commit(resp);
      send(std::move(resp));
    }
    return {};
  }
  if ((m.type() == pb::MSG_VOTE_RESP || m.type() == pb::MSG_PRE_VOTE_RESP) && m.reject() && role_ != Role::kLeader) {
    learn_commit_from_rejection(m);
  }

  switch (m.type()) {
    case pb::MSG_HUP:
      hup(false);
      return {};
    case pb::MSG_VOTE:
    case pb::MSG_PRE_VOTE:
      handle_vote_request(m);
      return {};
    default:
      break;
  }
  switch (role_) {
    case Role::kLeader: return step_leader(m);
    case Role::kCandidate:
    case Role::kPreCandidate: return step_candidate(m);
    case Role::kFollower: return step_follower(m);
  }
  return {};
}

Status RaftCore::step_candidate(const pb::Message& m) {
  pb::MessageType my_resp = role_ == Role::kPreCandidate ? pb::MSG_PRE_VOTE_RESP : pb::MSG_VOTE_RESP;
  switch (m.type()) {
    case pb::MSG_PROP:
      return make_error(ErrorCode::kProposalDropped, "no leader: an election is in progress");
    case pb::MSG_APP:
      become_follower(m.term(), m.from());
      return handle_append_entries(m);
    case pb::MSG_HEARTBEAT:
      become_follower(m.term(), m.from());
      return handle_heartbeat(m);
    case pb::MSG_SNAP:
      become_follower(m.term(), m.from());
      handle_snapshot(m);
      return {};
    case pb::MSG_READ_INDEX:
      return make_error(ErrorCode::kProposalDropped, "no leader: an election is in progress");
    default:
      break;
  }
  if (m.type() == my_resp) {
    VoteResult res = poll(m.from(), m.type(), !m.reject());
    if (res == VoteResult::kWon) {
      if (role_ == Role::kPreCandidate) {
        campaign_internal(false, false);
      } else {
        become_leader();
        bcast_append();
      }
    } else if (res == VoteResult::kLost) {
      ASPEN_PROBE("raft.election_lost");
      // A rejection carries the rejecter's term, which may be ours or higher (handled above).
      become_follower(term_, kNoNode);
    }
  }
  return {};
}

Status RaftCore::step_follower(const pb::Message& m) {
  switch (m.type()) {
    case pb::MSG_PROP:
    case pb::MSG_READ_INDEX: {
      if (lead_ == kNoNode) {
        return make_error(ErrorCode::kProposalDropped, "no leader known to forward to");
      }
      pb::Message fwd = m;
      fwd.set_to(lead_);
      send(std::move(fwd));
      return {};
    }
    case pb::MSG_APP:
      heard_from_leader(m.from());
      return handle_append_entries(m);
    case pb::MSG_HEARTBEAT:
      heard_from_leader(m.from());
      return handle_heartbeat(m);
    case pb::MSG_SNAP:
      heard_from_leader(m.from());
      handle_snapshot(m);
      return {};
    case pb::MSG_TRANSFER_LEADER:
      if (lead_ != kNoNode) {
        pb::Message fwd = m;
        fwd.set_to(lead_);
        send(std::move(fwd));
      }
      return {};
    case pb::MSG_TIMEOUT_NOW:
      // §3.10: the leader asked us to take over: campaign at once, skipping pre-vote.
      hup(true);
      return {};
    case pb::MSG_READ_INDEX_RESP: {
      ReadState rs;
      rs.index = m.index();
      rs.context = m.context();
      rs.is_refused = m.reject();
      read_states_.push_back(std::move(rs));
      return {};
    }
    default:
      return {};
  }
}

Status RaftCore::handle_append_entries(const pb::Message& m) {
  pb::Message resp;
  resp.set_to(m.from());
  resp.set_type(pb::MSG_APP_RESP);
  if (m.index() < log_.committed()) {
    // Everything up to our commit index already matches the leader's log (§5.4 Log Matching).
    resp.set_index(log_.committed());
    send(std::move(resp));
    return {};
  }
  std::vector<pb::Entry> ents(m.entries().begin(), m.entries().end());
  if (log_.match_term(m.index(), m.log_term())) {
    // §5.4 Leader Completeness: a leader's log holds every committed entry, so its entries
    // never conflict with one.
    if (Index ci = log_.find_conflict(ents); ci != 0 && ci <= log_.committed()) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("MSG_APP from node {} refused: it conflicts with committed entry {}", m.from(), ci));
    }
  }
  if (auto last_new = log_.maybe_append(m.index(), m.log_term(), m.commit(), ents)) {
    resp.set_index(*last_new);
    send(std::move(resp));
    return {};
  }
  // §5.3 with the fast-backtracking optimisation: tell the leader the largest index whose
  // term is <= the term it probed, so it can skip a whole term per round trip.
  Index hint_index = std::min(m.index(), log_.last_index());
  auto [idx, t] = log_.find_conflict_by_term(hint_index, m.log_term());
  resp.set_index(m.index());
  resp.set_reject(true);
  resp.set_reject_hint(idx);
  resp.set_log_term(t);
  send(std::move(resp));
  return {};
}

Status RaftCore::handle_heartbeat(const pb::Message& m) {
  // A leader sends at most what this node acknowledged. More means a lost log or a hostile
  // peer; committing up to our own last index instead could commit entries that differ from
  // the leader's, so the commit is ignored (the heartbeat still counts as contact).
  const bool is_commit_known = m.commit() <= log_.last_index();
  if (is_commit_known) log_.commit_to(m.commit());
  pb::Message resp;
  resp.set_to(m.from());
  resp.set_type(pb::MSG_HEARTBEAT_RESP);
  resp.set_context(m.context());
  send(std::move(resp));
  if (is_commit_known) return {};
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("heartbeat from node {}: commit index {} is beyond this node's log (last index {}); "
                                "was this node's log lost?",
                                m.from(), m.commit(), log_.last_index()));
}

void RaftCore::handle_snapshot(const pb::Message& m) {
  pb::Message resp;
  resp.set_to(m.from());
  resp.set_type(pb::MSG_APP_RESP);
  if (restore(m.snapshot())) {
    resp.set_index(log_.last_index());
  } else {
    resp.set_index(log_.committed());
  }
  send(std::move(resp));
}

bool RaftCore::restore(const pb::Snapshot& snap) {
  const auto& meta = snap.metadata();
  if (meta.index() <= log_.committed()) return false;
  if (role_ != Role::kFollower) {
    become_follower(term_ + 1, kNoNode);
    return false;
  }
  // If we already have the snapshot's last entry, just fast-forward the commit index.
  if (log_.match_term(meta.index(), meta.term())) {
    log_.commit_to(meta.index());
    return false;
  }
  log_.restore(snap);
  ConfigAndProgress cp = restore_conf_state(meta.conf_state(), log_.last_index(), trk_.max_inflight());
  switch_to_config(std::move(cp));
  return true;
}

void RaftCore::send(pb::Message m) {
  if (m.from() == kNoNode) m.set_from(id_);
  if (m.type() == pb::MSG_VOTE || m.type() == pb::MSG_VOTE_RESP || m.type() == pb::MSG_PRE_VOTE ||
      m.type() == pb::MSG_PRE_VOTE_RESP) {
    ASPEN_ASSERT_MSG(m.term() != 0, "vote messages must carry a term");
  } else if (m.type() == pb::MSG_PROP || m.type() == pb::MSG_READ_INDEX) {
    // Proposals and forwarded reads are not bound to a term: whoever leads may serve them.
    m.set_term(0);
  } else {
    m.set_term(term_);
  }
  if (m.type() == pb::MSG_APP_RESP || m.type() == pb::MSG_HEARTBEAT_RESP) m.set_wants_commit(wants_commit_eagerly_);
  msgs_.push_back(std::move(m));
}

}  // namespace aspen::raft

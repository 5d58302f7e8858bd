#include "dns/server.h"

#include <algorithm>

namespace aspen::dns {

namespace {

std::string cache_key(const Question& q) {
  std::string k;
  append_wire_name(k, q.name.lower());
  k.push_back(static_cast<char>(q.type >> 8));
  k.push_back(static_cast<char>(q.type & 0xff));
  k.push_back(static_cast<char>(q.klass >> 8));
  k.push_back(static_cast<char>(q.klass & 0xff));
  return k;
}

Message reply_to(const Header& query) {
  Message m;
  m.header.id = query.id;
  m.header.is_response = true;
  m.header.opcode = query.opcode;
  m.header.is_recursion_desired = query.is_recursion_desired;
  return m;
}

Record our_opt() {
  Record opt;
  opt.type = type::kOpt;
  opt.klass = static_cast<uint16_t>(kMaxUdpPayloadBytes);
  return opt;
}

}  // namespace

Server::Server(kv::KeyValueStore& store, ServerOptions options) : store_(store), options_(std::move(options)) {}

void Server::invalidate() {
  std::lock_guard lock(mu_);
  answers_.clear();
  zones_.reset();
  ++generation_;
}

ServerStats Server::stats() const {
  return ServerStats{queries_.load(), cache_hits_.load(), store_errors_.load(), malformed_.load()};
}

Result<std::vector<Zone>> Server::served_zones(uint64_t now_ms) {
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (zones_ && now_ms < zones_expire_ms_) return *zones_;
    generation = generation_;
  }
  RecordReader reader(store_);
  auto all = reader.zones();
  if (!all) return all;
  std::vector<Zone> served;
  for (auto& z : *all) {
    const bool is_listed = options_.zones.empty() ||
                           std::any_of(options_.zones.begin(), options_.zones.end(), [&](const Name& n) { return n.equals(z.name); });
    if (is_listed) served.push_back(std::move(z));
  }
  std::lock_guard lock(mu_);
  if (options_.cache_ttl_ms > 0 && generation == generation_) {
    zones_ = served;
    zones_expire_ms_ = now_ms + options_.cache_ttl_ms;
  }
  return served;
}

Result<Answer> Server::answer_for(const Question& q, uint64_t now_ms) {
  const std::string key = cache_key(q);
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = answers_.find(key); it != answers_.end() && now_ms < it->second.expires_ms) {
      cache_hits_.fetch_add(1, std::memory_order_relaxed);
      return it->second.answer;
    }
    generation = generation_;
  }
  auto zones = served_zones(now_ms);
  if (!zones) return std::unexpected(zones.error());
  RecordReader reader(store_);
  auto ans = resolve(reader, *zones, q);
  if (!ans) return ans;
  std::lock_guard lock(mu_);
  // An answer read while a change was being reported may predate the change: not kept.
  if (options_.cache_ttl_ms > 0 && generation == generation_) {
    if (answers_.size() >= kMaxCachedAnswers) answers_.clear();
    answers_[key] = CachedAnswer{now_ms + options_.cache_ttl_ms, *ans};
  }
  return ans;
}

std::optional<std::string> Server::handle(std::string_view bytes, bool is_tcp, uint64_t now_ms) {
  queries_.fetch_add(1, std::memory_order_relaxed);
  auto header = decode_header(bytes);
  if (!header || header->is_response) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  const size_t tcp_limit = kMaxMessageBytes;
  auto query = decode_message(bytes);
  if (!query || query->questions.size() != 1) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    Message m = reply_to(*header);
    m.header.rcode = rcode::kFormErr;
    return encode_message(m, is_tcp ? tcp_limit : kMinUdpPayloadBytes).bytes;
  }
  Message m = reply_to(query->header);
  m.questions.push_back(query->questions.front());
  size_t limit = is_tcp ? tcp_limit : kMinUdpPayloadBytes;
  size_t opt_count = 0;
  for (const auto& r : query->additional) opt_count += r.type == type::kOpt ? 1 : 0;
  if (opt_count > 1) {
    m.header.rcode = rcode::kFormErr;
    return encode_message(m, limit).bytes;
  }
  if (const Record* opt = query->opt(); opt != nullptr) {
    m.additional.push_back(our_opt());
    if (!is_tcp) limit = std::clamp<size_t>(opt->klass, kMinUdpPayloadBytes, kMaxUdpPayloadBytes);
    if (((opt->ttl >> 16) & 0xff) != 0) {
      // RFC 6891 6.1.3: an EDNS version we do not speak is BADVERS (16): 1 in the OPT's
      // extended rcode bits, 0 in the header.
      m.additional.back().ttl = uint32_t{1} << 24;
      return encode_message(m, limit).bytes;
    }
  }
  if (query->header.opcode != 0) {
    m.header.rcode = rcode::kNotImp;
    return encode_message(m, limit).bytes;
  }
  auto ans = answer_for(query->questions.front(), now_ms);
  if (!ans) {
    store_errors_.fetch_add(1, std::memory_order_relaxed);
    m.header.rcode = rcode::kServFail;
    return encode_message(m, limit).bytes;
  }
  m.header.rcode = ans->rcode;
  m.header.is_authoritative = ans->is_authoritative;
  m.answers = std::move(ans->answers);
  m.authority = std::move(ans->authority);
  // Answers are kept in lowercase; the owner that is the question goes back as it was asked.
  const Name& asked = m.questions.front().name;
  for (auto& r : m.answers) {
    if (r.name.equals(asked)) r.name = asked;
  }
  return encode_message(m, limit).bytes;
}

}  // namespace aspen::dns

#include "cluster/mdns.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>

#include "core/assert.h"

namespace aspen::cluster {

namespace {

// The fields of one of our TXT records, as written by announcement().
struct TxtFields {
  std::optional<NodeId> id;
  std::optional<transport::PublicKey> key;
  std::string tag;
  bool has_bad_field = false;
};

TxtFields read_txt(const std::vector<std::string>& strings) {
  TxtFields f;
  for (const auto& s : strings) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos) continue;
    const std::string_view name(s.data(), eq);
    const std::string_view value(s.data() + eq + 1, s.size() - eq - 1);
    if (name == "id") {
      uint64_t id = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
      if (ec != std::errc() || end != value.data() + value.size() || id == kNoNode) {
        f.has_bad_field = true;
      } else {
        f.id = id;
      }
    } else if (name == "key") {
      auto key = transport::PublicKey::parse(value);
      if (key) {
        f.key = *key;
      } else {
        f.has_bad_field = true;
      }
    } else if (name == "tag") {
      f.tag = std::string(value);
    }
  }
  return f;
}

bool is_ipv4(const std::string& ip) {
  in_addr a{};
  return ::inet_pton(AF_INET, ip.c_str(), &a) == 1;
}

}  // namespace

std::string_view mdns_verdict_name(MdnsVerdict verdict) {
  switch (verdict) {
    case MdnsVerdict::kAccepted: return "accepted";
    case MdnsVerdict::kGoodbye: return "goodbye";
    case MdnsVerdict::kQuery: return "query";
    case MdnsVerdict::kOwn: return "own";
    case MdnsVerdict::kOtherCluster: return "other_cluster";
    case MdnsVerdict::kIgnored: return "ignored";
    case MdnsVerdict::kBadRecord: return "bad_record";
    case MdnsVerdict::kMalformed: return "malformed";
    case MdnsVerdict::kOversized: return "oversized";
    case MdnsVerdict::kRateLimited: return "rate_limited";
  }
  return "unknown";
}

MdnsCore::MdnsCore(MdnsCoreConfig config)
    : config_(std::move(config)),
      service_(DnsName::from_dotted(kMdnsServiceType)),
      instance_(DnsName::from_dotted(fmt::format("{}.{}", instance_label(), kMdnsServiceType))),
      host_(DnsName::from_dotted(fmt::format("{}.local", instance_label()))) {
  ASPEN_ASSERT(config_.node_id != kNoNode);
  ASPEN_ASSERT(config_.cluster_tag.size() == 2 * kMdnsClusterTagBytes);
  ASPEN_ASSERT(is_ipv4(config_.ipv4));
  ASPEN_ASSERT(config_.sender_datagrams_per_min > 0);
}

std::string MdnsCore::instance_label() const {
  return fmt::format("aspen-{}-{}", config_.node_id, std::string_view(config_.cluster_tag).substr(0, 8));
}

std::string MdnsCore::query() const {
  DnsMessage m;
  m.questions.push_back(DnsQuestion{service_, kDnsTypePtr, kDnsClassIn, false});
  auto bytes = encode_dns_message(m);
  ASPEN_ASSERT(bytes.has_value());
  return std::move(*bytes);
}

std::string MdnsCore::announcement(uint32_t ttl_s) const {
  DnsMessage m;
  m.is_response = true;
  m.is_authoritative = true;
  DnsRecord ptr;
  ptr.name = service_;
  ptr.type = kDnsTypePtr;
  ptr.ttl_s = ttl_s;
  ptr.ptr = instance_;
  DnsRecord srv;
  srv.name = instance_;
  srv.type = kDnsTypeSrv;
  srv.is_cache_flush = true;
  srv.ttl_s = ttl_s;
  srv.srv = DnsSrv{0, 0, config_.port, host_};
  DnsRecord txt;
  txt.name = instance_;
  txt.type = kDnsTypeTxt;
  txt.is_cache_flush = true;
  txt.ttl_s = ttl_s;
  txt.txt = {"txtvers=1", fmt::format("id={}", config_.node_id), "key=" + config_.key.to_string(),
             "tag=" + config_.cluster_tag};
  DnsRecord a;
  a.name = host_;
  a.type = kDnsTypeA;
  a.is_cache_flush = true;
  a.ttl_s = ttl_s;
  in_addr ip{};
  ::inet_pton(AF_INET, config_.ipv4.c_str(), &ip);
  static_assert(sizeof(ip.s_addr) == 4);
  std::memcpy(a.a.data(), &ip.s_addr, 4);
  m.answers = {ptr, srv, txt};
  m.additionals = {a};
  auto bytes = encode_dns_message(m, kMaxMdnsSendBytes);
  ASPEN_ASSERT(bytes.has_value());  // a few hundred bytes: names and fields are bounded
  return std::move(*bytes);
}

bool MdnsCore::take_rate(const std::string& sender_ip, uint64_t now_ms) {
  auto it = rates_.find(sender_ip);
  if (it == rates_.end()) {
    if (rates_.size() >= kMaxMdnsRateSenders) {
      rates_.erase(std::min_element(rates_.begin(), rates_.end(), [](const auto& x, const auto& y) {
        return x.second.start_ms < y.second.start_ms;
      }));
    }
    it = rates_.emplace(sender_ip, RateWindow{now_ms, 0}).first;
  }
  RateWindow& w = it->second;
  if (now_ms >= w.start_ms + kMdnsRateWindowMs || now_ms < w.start_ms) w = RateWindow{now_ms, 0};
  ASPEN_ASSERT(rates_.size() <= kMaxMdnsRateSenders);
  if (w.count >= config_.sender_datagrams_per_min) return false;
  ++w.count;
  return true;
}

bool MdnsCore::asks_for_us(const DnsMessage& m) const {
  if (m.is_response) return false;
  return std::any_of(m.questions.begin(), m.questions.end(), [&](const DnsQuestion& q) {
    const bool is_type_ok = q.type == kDnsTypeAny || q.type == kDnsTypePtr || q.type == kDnsTypeSrv ||
                            q.type == kDnsTypeTxt || q.type == kDnsTypeA;
    return is_type_ok && (q.name.equals(service_) || q.name.equals(instance_) || q.name.equals(host_));
  });
}

MdnsVerdict MdnsCore::read_response(const DnsMessage& m, const std::string& sender_ip, MdnsReceived& out) const {
  std::vector<MdnsPeer>& learned = out.learned;
  bool has_bad = false;
  bool has_other_cluster = false;
  bool has_own = false;
  std::vector<const DnsRecord*> records;
  for (const auto* section : {&m.answers, &m.additionals}) {
    for (const auto& r : *section) records.push_back(&r);
  }
  for (const DnsRecord* txt : records) {
    if (txt->type != kDnsTypeTxt || !txt->name.ends_with(service_)) continue;
    const TxtFields f = read_txt(txt->txt);
    if (f.tag.empty() && !f.id && !f.key) continue;  // another TXT under our type: not ours
    if (!f.tag.empty() && f.tag != config_.cluster_tag) {
      has_other_cluster = true;
      continue;
    }
    if (f.has_bad_field || !f.id || !f.key || f.tag.empty()) {
      has_bad = true;
      continue;
    }
    if (*f.id == config_.node_id) {
      if (*f.key == config_.key) {
        has_own = true;
      } else {
        has_bad = true;  // another key claims this node's id
      }
      continue;
    }
    if (txt->ttl_s == 0) {  // a goodbye: who it was is enough
      MdnsPeer peer{*f.id, *f.key, {}};
      if (std::find(out.gone.begin(), out.gone.end(), peer) == out.gone.end()) out.gone.push_back(std::move(peer));
      continue;
    }
    const DnsRecord* srv = nullptr;
    for (const DnsRecord* r : records) {
      if (r->type == kDnsTypeSrv && r->ttl_s != 0 && r->name.equals(txt->name)) srv = r;
    }
    if (srv == nullptr || srv->srv.port == 0) {
      has_bad = true;
      continue;
    }
    // The A record of the SRV target; without one, where the datagram came from.
    std::string ip = sender_ip;
    for (const DnsRecord* r : records) {
      if (r->type == kDnsTypeA && r->ttl_s != 0 && r->name.equals(srv->srv.target)) {
        char text[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, r->a.data(), text, sizeof(text));
        ip = text;
        break;
      }
    }
    MdnsPeer peer{*f.id, *f.key, transport::SocketAddr{ip, srv->srv.port}};
    if (std::find(learned.begin(), learned.end(), peer) == learned.end()) learned.push_back(std::move(peer));
  }
  if (!learned.empty()) return MdnsVerdict::kAccepted;
  if (!out.gone.empty()) return MdnsVerdict::kGoodbye;
  if (has_bad) return MdnsVerdict::kBadRecord;
  if (has_other_cluster) return MdnsVerdict::kOtherCluster;
  if (has_own) return MdnsVerdict::kOwn;
  return MdnsVerdict::kIgnored;
}

MdnsReceived MdnsCore::on_datagram(std::string_view bytes, const std::string& sender_ip, uint64_t now_ms) {
  MdnsReceived out;
  ++stats_.datagrams_in;
  stats_.bytes_in += bytes.size();
  auto finish = [&](MdnsVerdict v) {
    out.verdict = v;
    ++stats_.verdicts[static_cast<size_t>(v)];
    return out;
  };
  // Our own datagrams loop back; they do not count against ourselves.
  if (bytes.size() > kMaxMdnsDatagramBytes) return finish(MdnsVerdict::kOversized);
  if (sender_ip != config_.ipv4 && !take_rate(sender_ip, now_ms)) return finish(MdnsVerdict::kRateLimited);
  auto m = decode_dns_message(bytes);
  if (!m) return finish(MdnsVerdict::kMalformed);
  out.should_answer = asks_for_us(*m);
  MdnsVerdict v = read_response(*m, sender_ip, out);
  if (v == MdnsVerdict::kIgnored && out.should_answer) v = MdnsVerdict::kQuery;
  ASPEN_ASSERT(out.learned.size() + out.gone.size() <= kMaxMdnsRecords);
  return finish(v);
}

bool MdnsCore::may_answer(uint64_t now_ms) {
  if (has_answered_ && now_ms < last_answer_ms_ + kMinMdnsAnswerIntervalMs && now_ms >= last_answer_ms_) return false;
  has_answered_ = true;
  last_answer_ms_ = now_ms;
  return true;
}

void MdnsCore::count_sent(bool is_query, size_t bytes) {
  ++(is_query ? stats_.queries_out : stats_.announcements_out);
  stats_.bytes_out += bytes;
}

}  // namespace aspen::cluster

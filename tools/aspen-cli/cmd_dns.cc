// aspen-cli dns set|delete|list and dns zone create|delete|list: the zones and records
// aspen-dns serves (src/dns/admin.h, docs/dns.md).
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli.h"
#include "dns/admin.h"
#include "dns/message.h"

namespace aspen::cli {

namespace {

struct DnsArgs {
  std::string name;
  std::string type;
  std::vector<std::string> values;
  uint32_t ttl_s = dns::kDefaultTtlS;
  bool is_add = false;
  // zone create
  std::string mname;
  std::string rname;
  uint32_t refresh_s = 3600, retry_s = 600, expire_s = 86400, minimum_s = 60;
};

Result<dns::Name> name_arg(std::string_view text) { return dns::parse_name(text); }

Result<uint16_t> type_arg(std::string_view text) {
  auto t = dns::type_from_name(text);
  if (!t) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("'{}' is not a record type aspen-dns stores (A, AAAA, CNAME, TXT, SRV, MX, NS)", text));
  }
  return *t;
}

nlohmann::json set_json(const dns::Name& name, const dns::RecordSet& set) {
  nlohmann::json values = nlohmann::json::array();
  for (const auto& rd : set.rdata) values.push_back(dns::rdata_to_text(set.type, rd));
  return {{"name", name.to_text()}, {"type", dns::type_name(set.type)}, {"ttl", set.ttl_s}, {"values", values}};
}

void print_set(const dns::Name& name, const dns::RecordSet& set) {
  for (const auto& rd : set.rdata) {
    std::cout << name.to_text() << "\t" << set.ttl_s << "\tIN\t" << dns::type_name(set.type) << "\t"
              << dns::rdata_to_text(set.type, rd) << "\n";
  }
}

int run_set(const Context& ctx, const DnsArgs& a) {
  auto name = name_arg(a.name);
  if (!name) return fail(ctx, name.error());
  auto t = type_arg(a.type);
  if (!t) return fail(ctx, t.error());
  return with_client(ctx, [&](client::Client& c) {
    dns::SetRequest req{*name, *t, a.values, a.ttl_s, a.is_add};
    auto set = dns::set_records(c, req);
    if (!set) return fail(ctx, set.error());
    if (ctx.is_json) {
      print_json_ok(set_json(*name, *set));
    } else {
      print_set(*name, *set);
    }
    return kExitOk;
  });
}

int run_delete(const Context& ctx, const DnsArgs& a) {
  auto name = name_arg(a.name);
  if (!name) return fail(ctx, name.error());
  std::optional<uint16_t> t;
  if (!a.type.empty()) {
    auto parsed = type_arg(a.type);
    if (!parsed) return fail(ctx, parsed.error());
    t = *parsed;
  }
  std::optional<std::string> value;
  if (!a.values.empty()) value = a.values.front();
  return with_client(ctx, [&](client::Client& c) {
    auto n = dns::delete_records(c, *name, t, value);
    if (!n) return fail(ctx, n.error());
    if (ctx.is_json) {
      print_json_ok({{"name", name->to_text()}, {"removed", *n}});
    } else {
      std::cout << "removed " << *n << " record(s) at " << name->to_text() << "\n";
    }
    return kExitOk;
  });
}

int run_list(const Context& ctx, const DnsArgs& a) {
  auto zone = name_arg(a.name);
  if (!zone) return fail(ctx, zone.error());
  return with_client(ctx, [&](client::Client& c) {
    auto sets = dns::list_records(c, *zone);
    if (!sets) return fail(ctx, sets.error());
    if (ctx.is_json) {
      nlohmann::json all = nlohmann::json::array();
      for (const auto& s : *sets) all.push_back(set_json(s.name, s.set));
      print_json_ok({{"zone", zone->to_text()}, {"records", all}});
    } else {
      for (const auto& s : *sets) print_set(s.name, s.set);
    }
    return kExitOk;
  });
}

int run_zone_create(const Context& ctx, const DnsArgs& a) {
  auto zone = name_arg(a.name);
  if (!zone) return fail(ctx, zone.error());
  dns::Zone z;
  z.name = *zone;
  z.ttl_s = a.ttl_s;
  auto mname = name_arg(a.mname.empty() ? "ns1." + zone->to_text() : a.mname);
  if (!mname) return fail(ctx, mname.error());
  auto rname = name_arg(a.rname.empty() ? "hostmaster." + zone->to_text() : a.rname);
  if (!rname) return fail(ctx, rname.error());
  z.soa = dns::Soa{*mname, *rname, 1, a.refresh_s, a.retry_s, a.expire_s, a.minimum_s};
  return with_client(ctx, [&](client::Client& c) {
    auto s = dns::create_zone(c, z);
    if (!s) return fail(ctx, s.error());
    if (ctx.is_json) {
      print_json_ok({{"zone", z.name.to_text()}, {"soa", dns::soa_to_text(z.soa)}, {"ttl", z.ttl_s}});
    } else {
      std::cout << "created zone " << z.name.to_text() << " (SOA " << dns::soa_to_text(z.soa) << ")\n";
    }
    return kExitOk;
  });
}

int run_zone_delete(const Context& ctx, const DnsArgs& a) {
  auto zone = name_arg(a.name);
  if (!zone) return fail(ctx, zone.error());
  return with_client(ctx, [&](client::Client& c) {
    auto n = dns::delete_zone(c, *zone);
    if (!n) return fail(ctx, n.error());
    if (ctx.is_json) {
      print_json_ok({{"zone", zone->to_text()}, {"record_sets_removed", *n}});
    } else {
      std::cout << "deleted zone " << zone->to_text() << " and " << *n << " record set(s)\n";
    }
    return kExitOk;
  });
}

int run_zone_list(const Context& ctx, const DnsArgs&) {
  return with_client(ctx, [&](client::Client& c) {
    auto zones = dns::list_zones(c);
    if (!zones) return fail(ctx, zones.error());
    if (ctx.is_json) {
      nlohmann::json all = nlohmann::json::array();
      for (const auto& z : *zones) all.push_back({{"zone", z.name.to_text()}, {"soa", dns::soa_to_text(z.soa)}, {"ttl", z.ttl_s}});
      print_json_ok({{"zones", all}});
    } else {
      for (const auto& z : *zones) std::cout << z.name.to_text() << "\t" << z.ttl_s << "\tSOA\t" << dns::soa_to_text(z.soa) << "\n";
    }
    return kExitOk;
  });
}

void set_action(CLI::App* cmd, Context& ctx, Action& action, std::shared_ptr<DnsArgs> args,
                int (*run)(const Context&, const DnsArgs&)) {
  cmd->callback([&ctx, &action, args, run] { action = [&ctx, args, run] { return run(ctx, *args); }; });
}

}  // namespace

void add_dns_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* dns_cmd = app.add_subcommand("dns", "Zones and records served by aspen-dns");
  dns_cmd->require_subcommand(1);
  dns_cmd->footer(
      "Names are absolute ('www.example.test.' or 'www.example.test'), letters, digits, '-' and '_'\n"
      "only; '*' as the leftmost label is a wildcard. A record belongs to the longest zone that\n"
      "holds its name; create the zone first. Changes reach aspen-dns within its --cache-ttl-ms\n"
      "(usually at once). Values by type:\n"
      "  A 192.0.2.1 | AAAA 2001:db8::1 | CNAME target.example.test. | NS ns1.example.test.\n"
      "  MX '10 mail.example.test.' | SRV '10 5 5060 sip.example.test.' | TXT 'any text'\n"
      "Keys live under dns/ (docs/dns.md).");

  auto set = std::make_shared<DnsArgs>();
  auto* set_cmd = dns_cmd->add_subcommand("set", "Set the records of a name and type (replaces them unless --add)");
  set_cmd->add_option("name", set->name, "Owner name, e.g. www.example.test.")->required();
  set_cmd->add_option("type", set->type, "A, AAAA, CNAME, TXT, SRV, MX or NS")->required();
  set_cmd->add_option("value", set->values, "One or more values (quote values with spaces)")->required();
  set_cmd->add_option("--ttl", set->ttl_s, fmt::format("TTL in seconds (at most {})", dns::kMaxTtlS))->capture_default_str();
  set_cmd->add_flag("--add", set->is_add, "Add the values to the existing set instead of replacing it");
  set_cmd->footer("Examples:\n  aspen-cli dns set www.example.test. A 192.0.2.1 192.0.2.2 --ttl 60\n"
                  "  aspen-cli dns set '*.svc.example.test.' CNAME lb.example.test.\n"
                  "  aspen-cli dns set _sip._udp.example.test. SRV '10 5 5060 sip.example.test.'");
  set_action(set_cmd, ctx, action, set, &run_set);

  auto del = std::make_shared<DnsArgs>();
  auto* del_cmd = dns_cmd->add_subcommand("delete", "Delete the records of a name (of one type, or one value)");
  del_cmd->add_option("name", del->name, "Owner name")->required();
  del_cmd->add_option("type", del->type, "Only this type");
  del_cmd->add_option("value", del->values, "Only this value of the type")->expected(0, 1);
  set_action(del_cmd, ctx, action, del, &run_delete);

  auto list = std::make_shared<DnsArgs>();
  auto* list_cmd = dns_cmd->add_subcommand("list", "List every record of a zone, its SOA first");
  list_cmd->add_option("zone", list->name, "Zone, e.g. example.test.")->required();
  set_action(list_cmd, ctx, action, list, &run_list);

  auto* zone_cmd = dns_cmd->add_subcommand("zone", "Create, delete or list zones");
  zone_cmd->require_subcommand(1);
  auto zc = std::make_shared<DnsArgs>();
  zc->ttl_s = 3600;
  auto* zc_cmd = zone_cmd->add_subcommand("create", "Create a zone (its SOA serial then rises with every change)");
  zc_cmd->add_option("zone", zc->name, "Zone name, e.g. example.test.")->required();
  zc_cmd->add_option("--mname", zc->mname, "Primary server name in the SOA (default ns1.<zone>)");
  zc_cmd->add_option("--rname", zc->rname, "Responsible mailbox as a name (default hostmaster.<zone>)");
  zc_cmd->add_option("--ttl", zc->ttl_s, "TTL of the SOA record in seconds")->capture_default_str();
  zc_cmd->add_option("--refresh", zc->refresh_s, "SOA refresh (s)")->capture_default_str();
  zc_cmd->add_option("--retry", zc->retry_s, "SOA retry (s)")->capture_default_str();
  zc_cmd->add_option("--expire", zc->expire_s, "SOA expire (s)")->capture_default_str();
  zc_cmd->add_option("--minimum", zc->minimum_s, "SOA minimum: how long resolvers keep negative answers (s)")
      ->capture_default_str();
  set_action(zc_cmd, ctx, action, zc, &run_zone_create);

  auto zd = std::make_shared<DnsArgs>();
  auto* zd_cmd = zone_cmd->add_subcommand("delete", "Delete a zone and every record in it");
  zd_cmd->add_option("zone", zd->name, "Zone name")->required();
  set_action(zd_cmd, ctx, action, zd, &run_zone_delete);

  auto zl = std::make_shared<DnsArgs>();
  auto* zl_cmd = zone_cmd->add_subcommand("list", "List the zones");
  set_action(zl_cmd, ctx, action, zl, &run_zone_list);
}

}  // namespace aspen::cli

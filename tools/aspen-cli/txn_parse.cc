#include "txn_parse.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kv/commands.h"
#include "payload.h"

namespace aspen::cli {

namespace {

using nlohmann::json;

Error bad(const std::string& where, const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, fmt::format("txn {}: {}", where, what));
}

Result<std::string> string_field(const json& obj, const char* name, const std::string& where, bool is_required = true) {
  auto it = obj.find(name);
  if (it == obj.end()) {
    if (is_required) return std::unexpected(bad(where, fmt::format("missing \"{}\"", name)));
    return std::string();
  }
  if (!it->is_string()) return std::unexpected(bad(where, fmt::format("\"{}\" must be a string", name)));
  return it->get<std::string>();
}

// A byte string: the string field `name`, decoded as its optional "<name>_encoding" says
// ("utf8", the default, or "base64": the form `--json` prints binary keys and values in).
Result<std::string> bytes_field(const json& obj, const char* name, const std::string& where, bool is_required = true) {
  auto text = string_field(obj, name, where, is_required);
  if (!text) return text;
  const std::string encoding_name = std::string(name) + "_encoding";
  auto encoding = string_field(obj, encoding_name.c_str(), where, false);
  if (!encoding) return std::unexpected(encoding.error());
  if (encoding->empty() || *encoding == "utf8") return text;
  if (*encoding != "base64") {
    return std::unexpected(bad(where, fmt::format("\"{}\" must be utf8 or base64", encoding_name)));
  }
  auto bytes = base64_decode(*text);
  if (!bytes) return std::unexpected(bad(where, fmt::format("\"{}\" is {}", name, bytes.error().message())));
  return bytes;
}

Result<uint64_t> number_field(const json& obj, const char* name, const std::string& where) {
  auto it = obj.find(name);
  if (it == obj.end()) return uint64_t{0};
  if (!it->is_number_unsigned()) {
    return std::unexpected(bad(where, fmt::format("\"{}\" must be a non-negative integer", name)));
  }
  return it->get<uint64_t>();
}

Result<kvpb::Compare> parse_compare(const json& c, const std::string& where) {
  if (!c.is_object()) return std::unexpected(bad(where, "must be an object"));
  kvpb::Compare out;
  auto key = bytes_field(c, "key", where);
  if (!key) return std::unexpected(key.error());
  out.set_key(*key);
  auto target = string_field(c, "target", where);
  if (!target) return std::unexpected(target.error());
  if (*target == "value") {
    out.set_target(kvpb::Compare::TARGET_VALUE);
  } else if (*target == "version") {
    out.set_target(kvpb::Compare::TARGET_VERSION);
  } else if (*target == "create") {
    out.set_target(kvpb::Compare::TARGET_CREATE_REVISION);
  } else if (*target == "mod") {
    out.set_target(kvpb::Compare::TARGET_MOD_REVISION);
  } else {
    return std::unexpected(bad(where, "\"target\" must be value, version, create or mod"));
  }
  auto op = string_field(c, "op", where);
  if (!op) return std::unexpected(op.error());
  if (*op == "==") {
    out.set_op(kvpb::Compare::OP_EQUAL);
  } else if (*op == "!=") {
    out.set_op(kvpb::Compare::OP_NOT_EQUAL);
  } else if (*op == "<") {
    out.set_op(kvpb::Compare::OP_LESS);
  } else if (*op == ">") {
    out.set_op(kvpb::Compare::OP_GREATER);
  } else {
    return std::unexpected(bad(where, "\"op\" must be ==, !=, < or >"));
  }
  if (out.target() == kvpb::Compare::TARGET_VALUE) {
    auto value = bytes_field(c, "value", where);
    if (!value) return std::unexpected(value.error());
    out.set_value(*value);
  } else {
    if (!c.contains("number")) return std::unexpected(bad(where, "missing \"number\""));
    auto n = number_field(c, "number", where);
    if (!n) return std::unexpected(n.error());
    out.set_number(*n);
  }
  return out;
}

Result<kvpb::TxnOp> parse_op(const json& o, const std::string& where) {
  if (!o.is_object() || o.size() != 1) {
    return std::unexpected(bad(where, "must be an object with exactly one of put, delete, get, range"));
  }
  // Not a structured binding over o.items(): the proxy it would bind to is a temporary whose
  // key() points into an iterator that is gone by the time the name is read (ASan).
  const auto first = o.begin();
  const std::string name = first.key();
  const json& body = first.value();
  if (!body.is_object()) return std::unexpected(bad(where, fmt::format("\"{}\" must be an object", name)));
  kvpb::TxnOp out;
  const std::string at = where + "." + name;
  if (name == "put") {
    auto key = bytes_field(body, "key", at);
    if (!key) return std::unexpected(key.error());
    auto value = bytes_field(body, "value", at);
    if (!value) return std::unexpected(value.error());
    auto lease = number_field(body, "lease", at);
    if (!lease) return std::unexpected(lease.error());
    out.mutable_put()->set_key(*key);
    out.mutable_put()->set_value(*value);
    out.mutable_put()->set_lease_id(*lease);
  } else if (name == "delete") {
    auto key = bytes_field(body, "key", at);
    if (!key) return std::unexpected(key.error());
    out.mutable_delete_()->set_key(*key);
  } else if (name == "get") {
    auto key = bytes_field(body, "key", at);
    if (!key) return std::unexpected(key.error());
    *out.mutable_range() = kv::key_range(*key);
  } else if (name == "range") {
    auto* r = out.mutable_range();
    auto limit = number_field(body, "limit", at);
    if (!limit) return std::unexpected(limit.error());
    if (*limit > UINT32_MAX) return std::unexpected(bad(at, "\"limit\" is too large"));
    r->set_limit(static_cast<uint32_t>(*limit));
    if (body.contains("prefix")) {
      auto prefix = bytes_field(body, "prefix", at);
      if (!prefix) return std::unexpected(prefix.error());
      r->set_start(*prefix);
      r->set_is_prefix(true);
    } else {
      auto start = bytes_field(body, "start", at);
      if (!start) return std::unexpected(start.error());
      auto end = bytes_field(body, "end", at, false);
      if (!end) return std::unexpected(end.error());
      r->set_start(*start);
      r->set_end(*end);
    }
  } else {
    return std::unexpected(bad(where, fmt::format("unknown operation \"{}\"", name)));
  }
  return out;
}

Status parse_ops(const json& root, const char* name, google::protobuf::RepeatedPtrField<kvpb::TxnOp>* out) {
  auto it = root.find(name);
  if (it == root.end()) return {};
  if (!it->is_array()) return std::unexpected(bad(name, "must be an array"));
  for (size_t i = 0; i < it->size(); ++i) {
    auto op = parse_op((*it)[i], fmt::format("{}[{}]", name, i));
    if (!op) return std::unexpected(op.error());
    *out->Add() = std::move(*op);
  }
  return {};
}

}  // namespace

Result<kvpb::Txn> parse_txn_json(std::string_view text) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("txn is not valid JSON: {}", e.what()));
  }
  if (!root.is_object()) return make_error(ErrorCode::kInvalidArgument, "txn must be a JSON object");
  for (const auto& [name, value] : root.items()) {
    if (name != "compare" && name != "success" && name != "failure") {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("txn: unknown field \"{}\" (expected compare, success, failure)", name));
    }
  }
  kvpb::Txn txn;
  if (auto it = root.find("compare"); it != root.end()) {
    if (!it->is_array()) return make_error(ErrorCode::kInvalidArgument, "txn compare: must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
      auto c = parse_compare((*it)[i], fmt::format("compare[{}]", i));
      if (!c) return std::unexpected(c.error());
      *txn.add_compares() = std::move(*c);
    }
  }
  if (auto s = parse_ops(root, "success", txn.mutable_success()); !s) return std::unexpected(s.error());
  if (auto s = parse_ops(root, "failure", txn.mutable_failure()); !s) return std::unexpected(s.error());
  return txn;
}

}  // namespace aspen::cli

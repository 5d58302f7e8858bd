#include "rpc/handler_registry.h"

#include <fmt/format.h>

#include "core/assert.h"
#include "rpc/error_info.h"

namespace aspen::rpc {

void HandlerRegistry::add(clientpb::Request::OpCase op, std::string name, Handler handler) {
  ASPEN_ASSERT(op != clientpb::Request::OP_NOT_SET);
  bool is_new = handlers_.emplace(static_cast<int>(op), Entry{std::move(name), std::move(handler)}).second;
  ASPEN_ASSERT_MSG(is_new, "one handler per operation");
}

void HandlerRegistry::dispatch(const clientpb::Request& request, Reply reply) const {
  if (request.op_case() == clientpb::Request::OP_NOT_SET) {
    return reply(error_response(Error(ErrorCode::kInvalidArgument, "the request names no operation")));
  }
  auto it = handlers_.find(static_cast<int>(request.op_case()));
  if (it == handlers_.end()) {
    return reply(error_response(Error(ErrorCode::kInvalidArgument,
                                      fmt::format("operation {} is not served by this node",
                                                  static_cast<int>(request.op_case())))));
  }
  it->second.handler(request, std::move(reply));
}

const std::string& HandlerRegistry::name_of(clientpb::Request::OpCase op) const {
  static const std::string kUnknown = "unknown";
  auto it = handlers_.find(static_cast<int>(op));
  return it == handlers_.end() ? kUnknown : it->second.name;
}

clientpb::Response error_response(const Error& error) {
  clientpb::Response r;
  *r.mutable_error() = to_error_info(error);
  return r;
}

}  // namespace aspen::rpc

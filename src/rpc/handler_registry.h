// HandlerRegistry: routes each client-protocol Request to the handler registered for its
// operation. A request with no operation, or one this node does not serve, gets a clean
// InvalidArgument answer rather than silence.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "aspen/client.pb.h"
#include "core/error.h"

namespace aspen::rpc {

// Answers one request. Call exactly once.
using Reply = std::function<void(clientpb::Response)>;
using Handler = std::function<void(const clientpb::Request&, Reply)>;

class HandlerRegistry {
 public:
  // `name` is for logs and metrics ("read", "write", ...). One handler per operation.
  void add(clientpb::Request::OpCase op, std::string name, Handler handler);
  void dispatch(const clientpb::Request& request, Reply reply) const;
  // "unknown" for operations without a handler.
  const std::string& name_of(clientpb::Request::OpCase op) const;

 private:
  struct Entry {
    std::string name;
    Handler handler;
  };
  std::map<int, Entry> handlers_;
};

// A Response carrying only the error.
clientpb::Response error_response(const Error& error);

}  // namespace aspen::rpc

// Shared by the node's config tests: a layer holding the two required settings plus the
// test's own, and the message a refused configuration gives.
#pragma once

#include <string>

#include "node/node_config.h"

namespace aspen::node::config_test {

// `extra` with a valid node id and cookie added where it sets none.
inline ConfigLayer required_with(ConfigLayer extra) {
  extra.emplace("node_id", "1");
  extra.emplace("cookie", "a-test-cookie-123");
  return extra;
}

// The refusal's message, or "(accepted)" if the layer resolved.
inline std::string error_of(const ConfigLayer& layer) {
  auto c = resolve_config({layer});
  return c ? std::string("(accepted)") : c.error().message();
}

}  // namespace aspen::node::config_test

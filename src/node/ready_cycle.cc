#include "node/ready_cycle.h"

namespace aspen::node {

// The node shell's and the simulator's driver, compiled once here (the header declares it
// extern); other cores (the Raft test network's) instantiate the template where they use it.
template class BasicReadyCycle<NodeCore>;

}  // namespace aspen::node

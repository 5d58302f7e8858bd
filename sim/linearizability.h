// The simulator's names for the linearizability checker, which lives in src/lincheck so that
// aspen-lincheck and the chaos harness run the very same code on real clusters' histories.
#pragma once

#include "lincheck/linearizability.h"

namespace aspen::sim {

using lincheck::CheckResult;
using lincheck::OpKind;
using lincheck::Operation;
using lincheck::check_linearizable;
using lincheck::describe_operation;

}  // namespace aspen::sim

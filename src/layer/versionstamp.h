// Versionstamped writes: a key (or value) holding a tuple with one incomplete versionstamp,
// written so that the state machine fills the stamp in at commit (kv.proto, Put). The stamp
// is the command's revision (8 bytes, big-endian) and the put's order within the command
// (2 bytes), so keys written this way sort in commit order and never collide: FoundationDB's
// SET_VERSIONSTAMPED_KEY and SET_VERSIONSTAMPED_VALUE.
//
//   Subspace log = ...;
//   auto put = versionstamped_key_put(log.key(), {Versionstamp::incomplete()}, "event");
//   auto r = put_versionstamped(store, {*put});                 // one command
//   Versionstamp v = committed_versionstamp(r->revision(), 0);   // the stamp the key got
//   log.unpack(key) == Tuple{v}                                  // for the key it wrote
//
// The tuple's user version (the last 2 of its 12 stamp bytes) is the caller's and is kept.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aspen/kv.pb.h"
#include "core/error.h"
#include "kv/key_value_store.h"
#include "layer/tuple.h"

namespace aspen::layer {

// A put of `prefix` + pack(t) -> value whose key stamp is filled in at commit. InvalidArgument
// unless t holds exactly one incomplete versionstamp.
Result<kvpb::Put> versionstamped_key_put(std::string_view prefix, const Tuple& t, std::string value);
// A put of key -> pack(t) whose value stamp is filled in at commit.
Result<kvpb::Put> versionstamped_value_put(std::string key, const Tuple& t);

// Writes the puts as one command (a Put for one, a SetMulti for more); the i-th put's stamp
// is committed_versionstamp(result.revision(), i).
Result<kvpb::CommandResult> put_versionstamped(kv::KeyValueStore& store, std::vector<kvpb::Put> puts);

// The stamp the put of order `order` got in the command committed at `revision`.
Versionstamp committed_versionstamp(uint64_t revision, uint16_t order, uint16_t user_version = 0);

}  // namespace aspen::layer

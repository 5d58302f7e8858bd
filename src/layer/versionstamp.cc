#include "layer/versionstamp.h"

#include "core/assert.h"
#include "core/limits.h"
#include "kv/commands.h"

namespace aspen::layer {

namespace {

// pack_with_versionstamp's form: the packed tuple, then the stamp's offset in 4 bytes,
// little-endian. Split into the bytes and the offset the Put carries.
Result<std::pair<std::string, uint32_t>> pack_and_locate(const Tuple& t) {
  auto packed = pack_with_versionstamp(t);
  if (!packed) return std::unexpected(packed.error());
  ASPEN_ASSERT(packed->size() >= 4 + kv::kVersionstampSizeBytes);
  uint32_t offset = 0;
  for (size_t i = 0; i < 4; ++i) {
    offset |= uint32_t{static_cast<uint8_t>((*packed)[packed->size() - 4 + i])} << (8 * i);
  }
  packed->resize(packed->size() - 4);
  ASPEN_ASSERT(uint64_t{offset} + kv::kVersionstampSizeBytes <= packed->size());
  return std::pair{std::move(*packed), offset};
}

}  // namespace

Result<kvpb::Put> versionstamped_key_put(std::string_view prefix, const Tuple& t, std::string value) {
  auto located = pack_and_locate(t);
  if (!located) return std::unexpected(located.error());
  kvpb::Put put;
  put.set_key(std::string(prefix) + located->first);
  put.set_key_versionstamp_offset(static_cast<uint32_t>(prefix.size()) + located->second);
  put.set_value(std::move(value));
  return put;
}

Result<kvpb::Put> versionstamped_value_put(std::string key, const Tuple& t) {
  auto located = pack_and_locate(t);
  if (!located) return std::unexpected(located.error());
  kvpb::Put put;
  put.set_key(std::move(key));
  put.set_value(std::move(located->first));
  put.set_value_versionstamp_offset(located->second);
  return put;
}

Result<kvpb::CommandResult> put_versionstamped(kv::KeyValueStore& store, std::vector<kvpb::Put> puts) {
  if (puts.empty()) return make_error(ErrorCode::kInvalidArgument, "no puts to write");
  kvpb::Command cmd;
  if (puts.size() == 1) {
    *cmd.mutable_put() = std::move(puts[0]);
  } else {
    for (auto& p : puts) *cmd.mutable_set_multi()->add_puts() = std::move(p);
  }
  return store.execute(std::move(cmd));
}

Versionstamp committed_versionstamp(uint64_t revision, uint16_t order, uint16_t user_version) {
  std::string bytes(kv::kVersionstampSizeBytes, '\0');
  kv::write_versionstamp(bytes, 0, revision, order);
  Versionstamp v;
  for (size_t i = 0; i < bytes.size(); ++i) v.tr_version[i] = static_cast<uint8_t>(bytes[i]);
  v.user_version = user_version;
  return v;
}

}  // namespace aspen::layer

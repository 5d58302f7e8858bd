#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "fuzz/frame_decoder_fuzz.h"
#include "fuzz/harness/harness.h"

namespace aspen::fuzz {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property broken: %s\n", what);
  std::abort();
}

std::vector<Record> split_records(const uint8_t* data, size_t size, size_t max_records) {
  std::vector<Record> out;
  size_t off = 0;
  while (off + 3 <= size && out.size() < max_records) {
    const size_t len = (size_t{data[off + 1]} << 8) | data[off + 2];
    const size_t take = std::min(len, size - off - 3);
    out.push_back(Record{data[off], std::string_view(reinterpret_cast<const char*>(data + off + 3), take)});
    off += 3 + take;
  }
  return out;
}

void append_record(std::string& out, uint8_t tag, std::string_view bytes) {
  const size_t len = std::min<size_t>(bytes.size(), 0xffff);
  out.push_back(static_cast<char>(tag));
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(len & 0xff));
  out.append(bytes.substr(0, len));
}

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"raft_step", raft_step_one_input, raft_step_seeds},
      {"raft_stream", raft_stream_one_input, raft_stream_seeds},
      {"client_request", client_request_one_input, client_request_seeds},
      {"snapshot_load", snapshot_load_one_input, snapshot_load_seeds},
      {"node_record", node_record_one_input, node_record_seeds},
      {"frame_decoder", frame_decoder_one_input, frame_decoder_seeds},
      {"token_verify", token_verify_one_input, token_verify_seeds},
      {"blob_range_verify", blob_range_verify_one_input, blob_range_verify_seeds},
      {"tuple_decode", tuple_decode_one_input, tuple_decode_seeds},
      {"dns_message", dns_message_one_input, dns_message_seeds},
      {"gossip_message", gossip_message_one_input, gossip_message_seeds},
      {"dns_discovery_records", dns_discovery_records_one_input, dns_discovery_records_seeds},
      {"mdns_datagram", mdns_datagram_one_input, mdns_datagram_seeds},
      {"ticket_decode", ticket_decode_one_input, ticket_decode_seeds},
  };
  return all;
}

}  // namespace aspen::fuzz

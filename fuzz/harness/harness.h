// Fuzz entry points for the decoders and handlers of untrusted bytes. Each takes one input
// and returns 0; a broken property aborts. aspen_tests replays every target's seeds, every
// file of its corpus (fuzz/corpus/<target>/) and random mutations of them on every run
// (tests/fuzz/fuzz_replay_test.cc), also under ASan (scripts/test.sh --sanitize). Each has
// the LLVMFuzzerTestOneInput shape; fuzz/build.sh builds each as a libFuzzer binary
// (build-fuzz/aspen-fuzz-<target>, fuzz/libfuzzer_main.cc) and fuzz/run.sh MINUTES runs them.
//
//   raft_step       RaftCore::step fed arbitrary messages inside a live three-node cluster
//   raft_stream     an inbound "raft-auth" stream: frames, the greeting, then Raft messages
//                   or snapshot frames, as RaftLinks takes them (raft_stream_rules.h)
//   client_request  a client request decoded and executed against the state machine
//   snapshot_load   a snapshot's data loaded into an empty state machine
//   node_record     a member record read into the peer registry
//   frame_decoder   the transport's frame decoder, whole and in pieces
//   token_verify    a capability token verified, read as text and inspected (src/auth)
//   blob_range_verify  a blob's range encoding checked by a RangeVerifier (src/blob)
//   tuple_decode    bytes read as a packed tuple (src/layer), and packed again
//   dns_message     a DNS query answered by aspen-dns's server, and stored DNS data (src/dns)
//   gossip_message  a message received on "aspen-gossip", decoded and taken (src/cluster/gossip.h),
//                   and read as the answer to a follow request (src/cluster/gossip_follow.h)
//   dns_discovery_records  SRV/TXT/A answers read by DNS discovery (src/cluster/dns_discovery.h)
//   mdns_datagram   a datagram received on the mDNS socket, decoded and read (src/cluster/mdns.h)
//   ticket_decode   text given as a cluster ticket, with or without a gossip follow topic
//                   (src/cluster/ticket.h)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aspen::fuzz {

using OneInput = int (*)(const uint8_t* data, size_t size);

struct Target {
  std::string_view name;
  OneInput one_input;
  // Well-formed inputs to start from (the replay test mutates them).
  std::vector<std::string> (*seeds)();
};

int raft_step_one_input(const uint8_t* data, size_t size);
int raft_stream_one_input(const uint8_t* data, size_t size);
int client_request_one_input(const uint8_t* data, size_t size);
int snapshot_load_one_input(const uint8_t* data, size_t size);
int node_record_one_input(const uint8_t* data, size_t size);
int token_verify_one_input(const uint8_t* data, size_t size);
int blob_range_verify_one_input(const uint8_t* data, size_t size);
int tuple_decode_one_input(const uint8_t* data, size_t size);
int dns_message_one_input(const uint8_t* data, size_t size);
int gossip_message_one_input(const uint8_t* data, size_t size);
int dns_discovery_records_one_input(const uint8_t* data, size_t size);
int mdns_datagram_one_input(const uint8_t* data, size_t size);
int ticket_decode_one_input(const uint8_t* data, size_t size);

std::vector<std::string> raft_step_seeds();
std::vector<std::string> raft_stream_seeds();
std::vector<std::string> client_request_seeds();
std::vector<std::string> snapshot_load_seeds();
std::vector<std::string> node_record_seeds();
std::vector<std::string> frame_decoder_seeds();
std::vector<std::string> token_verify_seeds();
std::vector<std::string> blob_range_verify_seeds();
std::vector<std::string> tuple_decode_seeds();
std::vector<std::string> dns_message_seeds();
std::vector<std::string> gossip_message_seeds();
std::vector<std::string> dns_discovery_records_seeds();
std::vector<std::string> mdns_datagram_seeds();
std::vector<std::string> ticket_decode_seeds();

const std::vector<Target>& targets();

// A property that must hold whatever the input: aborts (the fuzzer's crash) when it fails.
void check(bool ok, const char* what);

// Splits an input into records: a 1-byte tag, a 2-byte big-endian length, the bytes.
struct Record {
  uint8_t tag = 0;
  std::string_view bytes;
};
std::vector<Record> split_records(const uint8_t* data, size_t size, size_t max_records);
void append_record(std::string& out, uint8_t tag, std::string_view bytes);

}  // namespace aspen::fuzz

// The frame decoder: any split of a valid byte stream decodes to the same messages; a header
// over the limit fails the decoder for good.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "transport/frame.h"

namespace aspen::transport {
namespace {

std::string encode(const std::vector<std::string>& messages) {
  std::string out;
  for (const auto& m : messages) {
    append_frame_header(out, static_cast<uint32_t>(m.size()));
    out += m;
  }
  return out;
}

RC_GTEST_PROP(TransportFrame, AnySplitDecodesTheSameMessages,
              (const std::vector<std::string>& messages, const std::vector<uint8_t>& cuts)) {
  const std::string wire = encode(messages);
  FrameDecoder decoder;
  std::vector<std::string> out;
  size_t pos = 0;
  for (uint8_t cut : cuts) {
    const size_t n = std::min<size_t>(cut, wire.size() - pos);
    RC_ASSERT(decoder.feed(std::string_view(wire).substr(pos, n), out) == FrameDecodeStatus::kOk);
    pos += n;
  }
  RC_ASSERT(decoder.feed(std::string_view(wire).substr(pos), out) == FrameDecodeStatus::kOk);
  RC_ASSERT(out == messages);
  RC_ASSERT(!decoder.has_partial_frame());
}

TEST(TransportFrame, HeaderOverLimitFailsBeforeBuffering) {
  FrameDecoder decoder(100);
  std::vector<std::string> out;
  std::string wire;
  append_frame_header(wire, 5);
  wire += "hello";
  append_frame_header(wire, 101);
  wire += "xyz";
  EXPECT_EQ(decoder.feed(wire, out), FrameDecodeStatus::kFrameTooLarge);
  EXPECT_EQ(out, std::vector<std::string>{"hello"});
  EXPECT_EQ(decoder.rejected_size_bytes(), 101u);
  EXPECT_TRUE(decoder.is_failed());
  EXPECT_EQ(decoder.feed("more", out), FrameDecodeStatus::kFrameTooLarge);
}

TEST(TransportFrame, LimitItselfIsAllowed) {
  FrameDecoder decoder(8);
  std::vector<std::string> out;
  std::string wire;
  append_frame_header(wire, 8);
  wire += "12345678";
  EXPECT_EQ(decoder.feed(wire, out), FrameDecodeStatus::kOk);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], "12345678");
}

TEST(TransportFrame, TruncatedFrameIsPartial) {
  FrameDecoder decoder;
  std::vector<std::string> out;
  EXPECT_EQ(decoder.feed(std::string("\0\0", 2), out), FrameDecodeStatus::kOk);
  EXPECT_TRUE(decoder.has_partial_frame());
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace aspen::transport

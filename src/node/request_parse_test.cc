#include "node/request_parse.h"

#include <gtest/gtest.h>

namespace shoal::node {
namespace {

TEST(RequestParseTest, RangeForms) {
  uint64_t offset = 0, length = 0;
  ASSERT_TRUE(ParseRange("bytes=10-19", 100, &offset, &length));
  EXPECT_EQ(offset, 10u);
  EXPECT_EQ(length, 10u);
  ASSERT_TRUE(ParseRange("bytes=90-", 100, &offset, &length));
  EXPECT_EQ(offset, 90u);
  EXPECT_EQ(length, 10u);
  ASSERT_TRUE(ParseRange("bytes=-30", 100, &offset, &length));
  EXPECT_EQ(offset, 70u);
  EXPECT_EQ(length, 30u);
  ASSERT_TRUE(ParseRange("bytes=-300", 100, &offset, &length));  // more than there is: all of it
  EXPECT_EQ(offset, 0u);
  EXPECT_EQ(length, 100u);
  ASSERT_TRUE(ParseRange("bytes=50-18446744073709551615", 100, &offset, &length));
  EXPECT_EQ(length, 50u);
}

TEST(RequestParseTest, UnsatisfiableRangesAreRefused) {
  uint64_t offset = 0, length = 0;
  EXPECT_FALSE(ParseRange("bytes=100-", 100, &offset, &length));
  EXPECT_FALSE(ParseRange("bytes=20-10", 100, &offset, &length));
  EXPECT_FALSE(ParseRange("bytes=-0", 100, &offset, &length));
  EXPECT_FALSE(ParseRange("bytes=0-1,5-6", 100, &offset, &length));
  EXPECT_FALSE(ParseRange("bytes=a-b", 100, &offset, &length));
  EXPECT_FALSE(ParseRange("bytes=0-18446744073709551616", 100, &offset, &length));
  EXPECT_FALSE(ParseRange("items=0-1", 100, &offset, &length));
}

// Found by tests/fuzz/request_fuzz: "bytes=-N" of an empty object gave an empty range, which
// the server answered 206 with Content-Range "bytes 0-18446744073709551615/0".
TEST(RequestParseTest, SuffixRangeOfEmptyObjectIsUnsatisfiable) {
  uint64_t offset = 7, length = 7;
  EXPECT_FALSE(ParseRange("bytes=-500", 0, &offset, &length));
  EXPECT_FALSE(ParseRange("bytes=0-", 0, &offset, &length));
}

TEST(RequestParseTest, QueryParametersAreDecoded) {
  EXPECT_EQ(QueryParam("/v1/object?url=az%3A%2F%2Fc%2Fa+b&index=3", "url"), "az://c/a b");
  EXPECT_EQ(QueryParam("/v1/object?url=az://c/k&index=3", "index"), "3");
  EXPECT_EQ(QueryParam("/v1/object?index", "index"), "");
  EXPECT_EQ(QueryParam("/v1/object?url=x", "id"), "");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz%4"), "%zz%4");
}

TEST(RequestParseTest, NumbersAreWholeDecimals) {
  EXPECT_EQ(ParseNumber("42"), 42u);
  EXPECT_EQ(ParseNumber(""), std::nullopt);
  EXPECT_EQ(ParseNumber("-1"), std::nullopt);
  EXPECT_EQ(ParseNumber("1e3"), std::nullopt);
  EXPECT_EQ(ParseNumber("18446744073709551616"), std::nullopt);
}

TEST(RequestParseTest, ChunkLinesAndSizes) {
  std::string line;
  size_t used = 0;
  EXPECT_EQ(ScanChunkLine("1a;x=y\r\nrest", &line, &used), ChunkLine::kLine);
  EXPECT_EQ(line, "1a;x=y");
  EXPECT_EQ(used, 8u);
  EXPECT_EQ(ScanChunkLine("1a", &line, &used), ChunkLine::kNeedMore);
  EXPECT_EQ(ScanChunkLine(std::string(kMaxChunkLine + 1, 'f'), &line, &used), ChunkLine::kTooLong);
  EXPECT_EQ(*ParseChunkSize("1a;x=y"), 26u);
  EXPECT_EQ(*ParseChunkSize("FF \t"), 255u);
  EXPECT_FALSE(ParseChunkSize("").ok());
  EXPECT_FALSE(ParseChunkSize("0x10").ok());
  EXPECT_FALSE(ParseChunkSize("-1").ok());
  EXPECT_FALSE(ParseChunkSize("10000000000000000").ok());  // past 2^64
}

}  // namespace
}  // namespace shoal::node

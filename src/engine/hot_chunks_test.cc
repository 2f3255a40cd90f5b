#include "engine/hot_chunks.h"

#include <gtest/gtest.h>

namespace shoal::engine {
namespace {

std::shared_ptr<const std::string> Bytes(size_t n, char c) { return std::make_shared<const std::string>(n, c); }

TEST(HotChunksTest, KeepsTheMostRecentlyUsedUnderItsCapacity) {
  HotChunks hot(300);
  hot.Put("a", Bytes(100, 'a'));
  hot.Put("b", Bytes(100, 'b'));
  hot.Put("c", Bytes(100, 'c'));
  ASSERT_NE(hot.Get("a"), nullptr);  // a is now the most recent
  hot.Put("d", Bytes(100, 'd'));     // b, the least recent, goes
  EXPECT_EQ(hot.Get("b"), nullptr);
  EXPECT_EQ(*hot.Get("a"), std::string(100, 'a'));
  EXPECT_NE(hot.Get("c"), nullptr);
  EXPECT_NE(hot.Get("d"), nullptr);
  EXPECT_EQ(hot.bytes(), 300u);
}

TEST(HotChunksTest, AChunkLargerThanTheCapacityIsNotKeptAndZeroKeepsNothing) {
  HotChunks hot(50);
  hot.Put("big", Bytes(51, 'x'));
  EXPECT_EQ(hot.Get("big"), nullptr);
  EXPECT_EQ(hot.bytes(), 0u);
  HotChunks none(0);
  none.Put("a", Bytes(1, 'a'));
  EXPECT_EQ(none.Get("a"), nullptr);
}

TEST(HotChunksTest, PuttingAnIdAgainReplacesItsBytesAndCountsThemOnce) {
  HotChunks hot(1000);
  hot.Put("a", Bytes(100, 'a'));
  hot.Put("a", Bytes(200, 'b'));
  EXPECT_EQ(hot.bytes(), 200u);
  EXPECT_EQ(*hot.Get("a"), std::string(200, 'b'));
}

}  // namespace
}  // namespace shoal::engine

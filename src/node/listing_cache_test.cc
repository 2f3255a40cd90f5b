#include "node/listing_cache.h"

#include <gtest/gtest.h>

namespace shoal::node {
namespace {

using Clock = ListingCache::Clock;

ListPage PageOf(int n, const std::string& first = "k") {
  ListPage p;
  for (int i = 0; i < n; i++) p.objects.push_back(ObjectInfo{first + std::to_string(i), 10, "e" + std::to_string(i), 0});
  return p;
}

TEST(ListingCache, APageIsUsedOnlyUnderItsGenerationAndWithinTheTtl) {
  ListingCache c;
  auto t = Clock::now();
  c.Put("a", "g1", PageOf(3), t);
  auto hit = c.Get("a", "g1", std::chrono::seconds(60), t + std::chrono::seconds(59));
  ASSERT_TRUE(hit.has_value());
  ASSERT_EQ(hit->objects.size(), 3u);
  EXPECT_EQ(hit->objects[2].key, "k2");
  EXPECT_FALSE(c.Get("b", "g1", std::chrono::seconds(60), t).has_value());
  // The cluster changed something: the page is not used, and is dropped.
  EXPECT_FALSE(c.Get("a", "g2", std::chrono::seconds(60), t).has_value());
  EXPECT_EQ(c.pages(), 0u);
  EXPECT_EQ(c.bytes(), 0u);
  c.Put("a", "g2", PageOf(3), t);
  EXPECT_FALSE(c.Get("a", "g2", std::chrono::seconds(60), t + std::chrono::seconds(60)).has_value()) << "too old";
  EXPECT_EQ(c.pages(), 0u);
}

TEST(ListingCache, ItHoldsAtMostItsBoundDroppingTheLeastRecentlyUsed) {
  const size_t one = ListingCache::Cost("p0", PageOf(100));
  ListingCache c(3 * one);
  auto t = Clock::now();
  for (int i = 0; i < 3; i++) c.Put("p" + std::to_string(i), "g", PageOf(100), t);
  EXPECT_EQ(c.bytes(), 3 * one);
  ASSERT_TRUE(c.Get("p0", "g", std::chrono::seconds(60), t).has_value());  // p1 is now the least recently used
  c.Put("p3", "g", PageOf(100), t);
  EXPECT_EQ(c.pages(), 3u);
  EXPECT_LE(c.bytes(), 3 * one);
  EXPECT_FALSE(c.Get("p1", "g", std::chrono::seconds(60), t).has_value());
  EXPECT_TRUE(c.Get("p0", "g", std::chrono::seconds(60), t).has_value());
  EXPECT_TRUE(c.Get("p3", "g", std::chrono::seconds(60), t).has_value());
  // A page larger than the whole bound is not kept, and drops nothing.
  c.Put("big", "g", PageOf(400), t);
  EXPECT_FALSE(c.Get("big", "g", std::chrono::seconds(60), t).has_value());
  EXPECT_EQ(c.pages(), 3u);
  // Replacing a page counts it once.
  c.Put("p0", "g", PageOf(100), t);
  EXPECT_EQ(c.pages(), 3u);
  EXPECT_EQ(c.bytes(), 3 * one);
}

}  // namespace
}  // namespace shoal::node

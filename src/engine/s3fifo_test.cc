#include "engine/s3fifo.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace shoal::engine {
namespace {

std::string Id(int i) { return "c" + std::to_string(i); }

TEST(S3Fifo, StaysUnderCapacity) {
  S3Fifo p(100);
  uint64_t evicted = 0;
  for (int i = 0; i < 1000; i++) {
    evicted += p.EvictFor(10).size();
    p.Insert(Id(i), 10, false);
    ASSERT_LE(p.used(), 100u);
  }
  EXPECT_EQ(p.size(), 10u);
  EXPECT_EQ(evicted, 990u);
}

// Tiny entries far under the byte capacity are bounded by count: at most max_entries stay,
// pinned ones beyond it until they are unpinned.
TEST(S3Fifo, ManyTinyEntriesAreBoundedByCount) {
  S3Fifo p(1 << 30, /*max_entries=*/100);
  uint64_t evicted = 0;
  for (int i = 0; i < 1000; i++) {
    evicted += p.EvictFor(1).size();
    p.Insert(Id(i), 1, false);
    ASSERT_LE(p.size(), 100u);
  }
  EXPECT_EQ(evicted, 900u);
  for (int i = 1000; i < 1050; i++) {
    p.EvictFor(1);
    p.Insert(Id(i), 1, /*pinned=*/true);
  }
  EXPECT_EQ(p.size(), 100u);  // 50 pinned, 50 others
  for (int i = 1050; i < 1100; i++) {
    p.EvictFor(1);
    p.Insert(Id(i), 1, true);
  }
  EXPECT_EQ(p.size(), 100u) << "every unpinned one went";
  p.EvictFor(1);
  p.Insert(Id(1100), 1, true);
  EXPECT_EQ(p.size(), 101u) << "pinned ones stay beyond the count";
  for (int i = 1000; i < 1101; i++) p.Pin(Id(i), false);
  EXPECT_EQ(p.EvictFor(0, 0).size(), 1u);
  EXPECT_EQ(p.size(), 100u);
}

TEST(S3Fifo, NeverEvictsPinnedEntries) {
  S3Fifo p(100);
  for (int i = 0; i < 8; i++) p.Insert(Id(i), 10, /*pinned=*/true);
  std::set<std::string> evicted;
  for (int i = 8; i < 100; i++) {
    for (auto& v : p.EvictFor(10)) evicted.insert(v);
    if (p.used() + 10 <= p.capacity()) p.Insert(Id(i), 10, false);
  }
  for (int i = 0; i < 8; i++) EXPECT_EQ(evicted.count(Id(i)), 0u) << Id(i);
  EXPECT_EQ(p.pinned_bytes(), 80u);
}

// A node full of small writes waiting for their upload: 100,000 pinned entries, 10 evictable
// ones. Making room looks at the evictable ones only (before, each eviction walked past every
// pinned entry in its queue: 100,000 steps, under the chunk store's lock, for every Put).
TEST(S3Fifo, EvictionAmongManyPinnedEntriesLooksOnlyAtEvictableOnes) {
  constexpr int kPinned = 100000, kFree = 10;
  S3Fifo p(kPinned + kFree);
  for (int i = 0; i < kPinned; i++) p.Insert(Id(i), 1, /*pinned=*/true);
  for (int i = kPinned; i < kPinned + kFree; i++) p.Insert(Id(i), 1, false);
  std::set<std::string> evicted;
  for (int i = 0; i < kFree; i++) {
    auto out = p.EvictFor(1);
    ASSERT_EQ(out.size(), 1u);
    evicted.insert(out[0]);
    p.Insert("new" + std::to_string(i), 1, true);
  }
  for (int i = kPinned; i < kPinned + kFree; i++) EXPECT_EQ(evicted.count(Id(i)), 1u) << Id(i);
  EXPECT_LE(p.visited(), 2u * kFree);
  EXPECT_TRUE(p.EvictFor(1).empty()) << "all pinned now";
  EXPECT_EQ(p.used(), static_cast<uint64_t>(kPinned + kFree));
  // Unpinned, an entry is evictable again, oldest unpinned first.
  p.Pin(Id(7), false);
  p.Pin(Id(3), false);
  EXPECT_EQ(p.EvictFor(1), std::vector<std::string>{Id(7)});
  EXPECT_EQ(p.pinned_bytes(), static_cast<uint64_t>(kPinned + kFree - 2));
}

TEST(S3Fifo, WhenEverythingIsPinnedNothingIsEvicted) {
  S3Fifo p(30);
  for (int i = 0; i < 3; i++) p.Insert(Id(i), 10, true);
  EXPECT_TRUE(p.EvictFor(10).empty());
  EXPECT_EQ(p.used(), 30u);
  p.Pin(Id(1), false);
  EXPECT_EQ(p.EvictFor(10), std::vector<std::string>{Id(1)});
}

// The point of S3-FIFO: a hot set read more than once survives a scan of one-time reads
// five times larger than the cache, with no reads of the hot set during the scan. Under
// LRU the scan would flush it entirely.
TEST(S3Fifo, AHotSetSurvivesAScanLargerThanTheCache) {
  S3Fifo p(1000);
  for (int i = 0; i < 50; i++) {  // hot set: 50 x 10 = half the cache, read twice
    p.EvictFor(10);
    p.Insert("hot" + std::to_string(i), 10, false);
    p.Touch("hot" + std::to_string(i));
  }
  for (int i = 0; i < 500; i++) {  // a scan: 5,000 bytes read once each
    p.EvictFor(10);
    p.Insert("scan" + std::to_string(i), 10, false);
  }
  int hot_left = 0;
  for (int i = 0; i < 50; i++) hot_left += p.Contains("hot" + std::to_string(i));
  EXPECT_EQ(hot_left, 50);
}

TEST(S3Fifo, AGhostHitGoesStraightToMain) {
  S3Fifo p(100);
  for (int i = 0; i < 20; i++) {  // c0 is evicted from the small queue unread
    p.EvictFor(10);
    p.Insert(Id(i), 10, false);
  }
  ASSERT_FALSE(p.Contains(Id(0)));
  p.EvictFor(10);
  p.Insert(Id(0), 10, false);  // remembered: admitted to main
  for (int i = 100; i < 105; i++) {  // a few one-time entries pass through small
    p.EvictFor(10);
    p.Insert(Id(i), 10, false);
  }
  EXPECT_TRUE(p.Contains(Id(0)));
}

}  // namespace
}  // namespace shoal::engine

#include "cluster/swarm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <thread>

namespace shoal::cluster {
namespace {

std::string Node(int i) { return "10.0.0." + std::to_string(i) + ":7070"; }

TEST(SwarmTrackerTest, SendsDirectUpToTheCapThenToHolders) {
  SwarmTracker t(SwarmTracker::Options{.direct = 2, .per_holder = 1});
  EXPECT_EQ(t.Route("c", Node(1)), "");
  EXPECT_EQ(t.Route("c", Node(2)), "");
  EXPECT_EQ(t.Sending("c"), 2);
  // Two copies on their way: the next askers go to the first two holders, one each.
  std::string a = t.Route("c", Node(3));
  std::string b = t.Route("c", Node(4));
  EXPECT_TRUE((a == Node(1) && b == Node(2)) || (a == Node(2) && b == Node(1))) << a << " " << b;
  // Node 1 and 2 have passed it on once each (per_holder 1): node 5 goes to 3 or 4.
  std::string c = t.Route("c", Node(5));
  EXPECT_TRUE(c == Node(3) || c == Node(4)) << c;
  // Full holders are dropped: the one of 3 and 4 not yet given an asker, and 5.
  EXPECT_EQ(t.Holders("c").size(), 2u);
  EXPECT_EQ(t.Sending("c"), 2) << "redirected askers are not sent from here";
}

TEST(SwarmTrackerTest, ABurstGetsDirectCopiesOnceThenHoldersServeIt) {
  SwarmTracker t(SwarmTracker::Options{.direct = 1, .per_holder = 1});
  EXPECT_EQ(t.Route("c", Node(1)), "");
  t.Release("c");
  EXPECT_EQ(t.Sending("c"), 0);
  EXPECT_EQ(t.Route("c", Node(2)), Node(1)) << "the copy sent is done, but this burst had its direct copy";
}

TEST(SwarmTrackerTest, AChunkIdleLongerThanIdleStartsAfresh) {
  SwarmTracker t(SwarmTracker::Options{.direct = 1, .per_holder = 1, .idle = std::chrono::milliseconds(0)});
  EXPECT_EQ(t.Route("c", Node(1)), "");
  t.Release("c");
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(t.Route("c", Node(2)), "") << "a new burst: node 1 may have dropped it";
  EXPECT_EQ(t.Holders("c"), std::vector<std::string>{Node(2)});
}

TEST(SwarmTrackerTest, DirectZeroNeverSpreads) {
  SwarmTracker t(SwarmTracker::Options{.direct = 0});
  for (int i = 0; i < 10; i++) EXPECT_EQ(t.Route("c", Node(i)), "");
  EXPECT_EQ(t.Sending("c"), 10);
}

TEST(SwarmTrackerTest, AskersWithoutAnEndpointAreServedHereAndHoldNothing) {
  SwarmTracker t(SwarmTracker::Options{.direct = 1, .per_holder = 4});
  EXPECT_EQ(t.Route("c", ""), "");
  EXPECT_EQ(t.Route("c", ""), "") << "no holder to send it to";
  EXPECT_TRUE(t.Holders("c").empty());
}

TEST(SwarmTrackerTest, AFailedHolderIsForgottenAndTheAskerServedDirect) {
  SwarmTracker t(SwarmTracker::Options{.direct = 1, .per_holder = 2});
  EXPECT_EQ(t.Route("c", Node(1)), "");
  EXPECT_EQ(t.Route("c", Node(2)), Node(1));
  t.Forget("c", Node(1));
  t.Acquire("c");
  EXPECT_EQ(t.Sending("c"), 2);
  EXPECT_EQ(t.Holders("c"), std::vector<std::string>{Node(2)});
  EXPECT_EQ(t.Route("c", Node(3)), Node(2));
}

TEST(SwarmTrackerTest, NeverSendsAnAskerToItself) {
  SwarmTracker t(SwarmTracker::Options{.direct = 1, .per_holder = 2});
  EXPECT_EQ(t.Route("c", Node(1)), "");
  EXPECT_EQ(t.Route("c", Node(1)), "") << "node 1 is the only holder: it is served here again";
}

// Over many chunks, passing on spreads over the readers instead of falling on the first to
// arrive each time. 14 of 16 askers per chunk go to holders: 200 * 14 / 16 = 175 each if even.
TEST(SwarmTrackerTest, PassingOnSpreadsOverAllReaders) {
  const int readers = 16, chunks = 200;
  for (bool shuffled : {false, true}) {
    SwarmTracker t(SwarmTracker::Options{.direct = 2, .per_holder = 2});
    std::map<std::string, int> given;
    std::vector<int> order;
    for (int r = 0; r < readers; r++) order.push_back(r);
    std::mt19937 rng(7);
    for (int c = 0; c < chunks; c++) {
      if (shuffled) std::shuffle(order.begin(), order.end(), rng);
      for (int r : order) {
        std::string to = t.Route("chunk" + std::to_string(c), Node(r));
        if (!to.empty()) given[to]++;
      }
    }
    std::vector<int> load;
    for (int r = 0; r < readers; r++) load.push_back(given[Node(r)]);
    std::sort(load.begin(), load.end());
    if (shuffled) {
      EXPECT_GE(load.front(), 165);
      EXPECT_LE(load.back(), 185);
    } else {
      // Always the same order: the first to arrive sit high in every tree and pass on more,
      // the last never can; still nobody takes more than 1.35 x its share.
      EXPECT_EQ(load.front(), 0);
      EXPECT_LE(load.back(), 236);
    }
  }
}

// 1000 askers of one chunk: the tree is about log2(1000) hops deep, not a chain.
TEST(SwarmTrackerTest, TreesStayShallow) {
  SwarmTracker t(SwarmTracker::Options{.direct = 2, .per_holder = 2});
  std::map<std::string, int> depth;
  int deepest = 0;
  for (int r = 0; r < 1000; r++) {
    std::string to = t.Route("c", Node(r));
    depth[Node(r)] = to.empty() ? 1 : depth.at(to) + 1;
    deepest = std::max(deepest, depth[Node(r)]);
  }
  EXPECT_LE(deepest, 10);
}

TEST(SwarmTrackerTest, MemoryIsBounded) {
  SwarmTracker t(SwarmTracker::Options{.direct = 1, .per_holder = 2, .max_chunks = 8, .max_holders = 4});
  for (int c = 0; c < 100; c++) t.Route("chunk" + std::to_string(c), Node(0));
  EXPECT_TRUE(t.Holders("chunk0").empty()) << "the least recently asked chunks are forgotten";
  EXPECT_EQ(t.Holders("chunk99").size(), 1u);
  for (int r = 0; r < 10; r++) t.Route("hot", Node(r));
  EXPECT_EQ(t.Holders("hot").size(), 4u) << "at most max_holders holders with room";
}

}  // namespace
}  // namespace shoal::cluster

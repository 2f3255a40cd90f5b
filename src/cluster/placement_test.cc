#include "cluster/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

namespace shoal::cluster {
namespace {

std::vector<Member> Nodes(int n, int domains = 1, int first = 0) {
  std::vector<Member> out;
  for (int i = first; i < first + n; i++) {
    out.push_back(Member{"node-" + std::to_string(i), 100, "zone-" + std::to_string(i % domains)});
  }
  return out;
}

Placement Make(uint32_t bits) {
  auto p = Placement::Create(bits);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(p).value();
}

// Owner ids per slot, to compare tables across membership changes.
std::vector<std::string> Owners(const Placement& p) {
  std::vector<std::string> out(p.slots());
  for (uint32_t s = 0; s < p.slots(); s++) out[s] = p.members()[p.Owner(s)].id;
  return out;
}

// Applies `next` as epoch 2 to `p` and returns (old owner, new owner) of every slot that moved;
// checks the count Apply reported.
std::vector<std::pair<std::string, std::string>> Moves(Placement& p, const std::vector<Member>& next) {
  auto before = Owners(p);
  auto moved = p.Apply(next, 2);
  EXPECT_TRUE(moved.ok()) << moved.status().ToString();
  auto after = Owners(p);
  std::vector<std::pair<std::string, std::string>> out;
  for (uint32_t s = 0; s < p.slots(); s++) {
    if (before[s] != after[s]) out.emplace_back(before[s], after[s]);
  }
  EXPECT_EQ(moved.ok() ? *moved : 0, out.size());
  return out;
}

TEST(PlacementTest, EveryMemberGetsItsShareWithinOneSlot) {
  Placement p = Make(16);
  ASSERT_TRUE(p.Apply(Nodes(1000), 1).ok());
  auto counts = p.SlotCounts();
  auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
  EXPECT_LE(*hi - *lo, 1u);
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), uint64_t{0}), p.slots());
}

TEST(PlacementTest, WeightsSetTheShares) {
  Placement p = Make(16);
  auto nodes = Nodes(10);
  nodes[3].weight = 300;  // three times the others: 3/12 of the slots
  ASSERT_TRUE(p.Apply(nodes, 1).ok());
  auto counts = p.SlotCounts();
  EXPECT_NEAR(static_cast<double>(counts[3]), p.slots() * 3.0 / 12, 1.0);
  EXPECT_NEAR(static_cast<double>(counts[0]), p.slots() * 1.0 / 12, 1.0);
}

TEST(PlacementTest, AJoiningNodeTakesOnlyItsShareAndOnlyFromOthers) {
  Placement p = Make(16);
  ASSERT_TRUE(p.Apply(Nodes(100), 1).ok());
  auto moves = Moves(p, Nodes(101));
  for (const auto& [from, to] : moves) EXPECT_EQ(to, "node-100") << "a slot moved between two old nodes";
  // The optimum: exactly the new node's share.
  auto newcomer = std::find_if(p.members().begin(), p.members().end(), [](const Member& m) { return m.id == "node-100"; });
  ASSERT_NE(newcomer, p.members().end());
  EXPECT_EQ(moves.size(), p.SlotCounts()[newcomer - p.members().begin()]);
  EXPECT_LE(moves.size(), p.slots() / 101 + 1);
  EXPECT_EQ(p.epoch(), 2u);
}

TEST(PlacementTest, ALeavingNodesSlotsAndOnlyThoseMove) {
  Placement p = Make(16);
  ASSERT_TRUE(p.Apply(Nodes(50), 1).ok());
  auto shrunk = Nodes(50);
  shrunk.erase(shrunk.begin() + 7);  // node-7 leaves
  auto moves = Moves(p, shrunk);
  for (const auto& [from, to] : moves) EXPECT_EQ(from, "node-7") << "a slot moved though its owner stayed";
  EXPECT_LE(moves.size(), p.slots() / 50 + 1);
  auto counts = p.SlotCounts();
  auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
  EXPECT_LE(*hi - *lo, 1u);
}

TEST(PlacementTest, TheSameSequenceGivesTheSameTableWhateverTheListOrder) {
  Placement a = Make(14), b = Make(14);
  auto first = Nodes(30);
  auto second = Nodes(35);
  second.erase(second.begin() + 2);
  ASSERT_TRUE(a.Apply(first, 1).ok());
  ASSERT_TRUE(a.Apply(second, 2).ok());
  std::reverse(first.begin(), first.end());
  std::rotate(second.begin(), second.begin() + 5, second.end());
  ASSERT_TRUE(b.Apply(first, 1).ok());
  ASSERT_TRUE(b.Apply(second, 2).ok());
  EXPECT_EQ(Owners(a), Owners(b));
}

TEST(PlacementTest, ReplicasAreDistinctAndSpreadOverFailureDomains) {
  Placement p = Make(14);
  ASSERT_TRUE(p.Apply(Nodes(12, /*domains=*/3), 1).ok());
  for (uint32_t s = 0; s < p.slots(); s++) {
    auto r = p.Replicas(s, 3);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0], p.Owner(s));
    std::set<std::string> ids, domains;
    for (uint32_t m : r) {
      ids.insert(p.members()[m].id);
      domains.insert(p.members()[m].domain);
    }
    EXPECT_EQ(ids.size(), 3u) << "slot " << s;
    EXPECT_EQ(domains.size(), 3u) << "slot " << s;
  }
  // One domain only, or fewer members than replicas asked: distinct members still.
  Placement one = Make(12);
  ASSERT_TRUE(one.Apply(Nodes(2), 1).ok());
  auto r = one.Replicas(5, 3);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_NE(r[0], r[1]);
}

TEST(PlacementTest, BadMembershipsAreRefused) {
  Placement p = Make(12);
  auto dup = Nodes(3);
  dup[2].id = dup[0].id;
  EXPECT_EQ(p.Apply(dup, 1).status().code(), Code::kInvalidArgument);
  auto zero = Nodes(3);
  zero[1].weight = 0;
  EXPECT_EQ(p.Apply(zero, 1).status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(Placement::Create(8).ok());
  EXPECT_FALSE(Placement::Create(40).ok());
}

TEST(PlacementTest, AChunkHashPicksASlotFromItsTopBits) {
  Placement p = Make(20);
  EXPECT_EQ(p.SlotOf(0), 0u);
  EXPECT_EQ(p.SlotOf(UINT64_MAX), p.slots() - 1);
  EXPECT_NE(ChunkHash("az://c/k@e#0"), ChunkHash("az://c/k@e#1"));
}

// A join takes slots evenly from over the whole table, not a block of it: every stretch of
// 256 consecutive slots gives the new node close to 1/5 of them.
TEST(PlacementTest, AJoinTakesSlotsSpreadOverTheTable) {
  Placement p = Make(14);
  ASSERT_TRUE(p.Apply(Nodes(4), 1).ok());
  ASSERT_TRUE(p.Apply(Nodes(5), 2).ok());
  uint32_t newcomer = 4;  // node-4, last in id order
  for (uint32_t start = 0; start < p.slots(); start += 256) {
    int taken = 0;
    for (uint32_t s = start; s < start + 256; s++) taken += p.Owner(s) == newcomer;
    EXPECT_GE(taken, 256 / 5 - 8) << "slots " << start << "+256";
    EXPECT_LE(taken, 256 / 5 + 8) << "slots " << start << "+256";
  }
}

// A first table deals slots round-robin: consecutive slots have different owners.
TEST(PlacementTest, AFirstTableDealsSlotsRoundRobin) {
  Placement p = Make(12);
  ASSERT_TRUE(p.Apply(Nodes(4), 1).ok());
  for (uint32_t s = 0; s + 4 <= p.slots(); s += 4) {
    std::set<uint32_t> owners = {p.Owner(s), p.Owner(s + 1), p.Owner(s + 2), p.Owner(s + 3)};
    ASSERT_EQ(owners.size(), 4u) << "slots " << s << "-" << s + 3;
  }
}

}  // namespace
}  // namespace shoal::cluster

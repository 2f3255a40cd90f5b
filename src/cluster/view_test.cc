#include "cluster/view.h"

#include <gtest/gtest.h>

namespace shoal::cluster {
namespace {

std::vector<Peer> Peers(int n) {
  std::vector<Peer> out;
  for (int i = 0; i < n; i++) {
    out.push_back(Peer{Member{"n" + std::to_string(i), 100, "n" + std::to_string(i)},
                       "127.0.0.1:" + std::to_string(7000 + i)});
  }
  return out;
}

std::shared_ptr<const View> MustBuild(const View* prev, const std::vector<Peer>& peers, uint64_t epoch) {
  auto v = View::Build(prev, peers, epoch, 12);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return *v;
}

TEST(ViewTest, EncodeDecodeKeepsBothTablesAndEndpoints) {
  auto v1 = MustBuild(nullptr, Peers(4), 1);
  auto v2 = MustBuild(v1.get(), Peers(5), 2);
  auto decoded = View::Decode(v2->Encode());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const View& d = **decoded;
  EXPECT_EQ(d.epoch(), 2u);
  EXPECT_EQ(d.placement().owners(), v2->placement().owners());
  ASSERT_NE(d.previous(), nullptr);
  EXPECT_EQ(d.previous()->owners(), v1->placement().owners());
  EXPECT_EQ(d.previous()->epoch(), 1u);
  EXPECT_TRUE(d.SameMembers(Peers(5)));
  EXPECT_FALSE(d.SameMembers(Peers(4)));
  EXPECT_EQ(d.EndpointOf("n4"), "127.0.0.1:7004");

  auto current = View::Decode(v2->Encode(/*current_only=*/true));
  ASSERT_TRUE(current.ok());
  EXPECT_EQ((*current)->previous(), nullptr);
  EXPECT_LE(v2->Encode(true).size() + 4 * 4096, v2->Encode().size());  // one table fewer
}

TEST(ViewTest, DecodeRejectsDamage) {
  auto v = MustBuild(nullptr, Peers(3), 1);
  std::string bytes = v->Encode();
  EXPECT_EQ(View::Decode("garbage").status().code(), Code::kCorruption);
  EXPECT_EQ(View::Decode(bytes.substr(0, bytes.size() - 1)).status().code(), Code::kCorruption);
  std::string bad_owner = bytes;
  bad_owner[bad_owner.size() - 1] = '\x7f';  // an owner index far outside the member list
  EXPECT_EQ(View::Decode(bad_owner).status().code(), Code::kCorruption);
}

// Found by tests/fuzz/view_fuzz: numbers outside their type (a float past 2^32, a negative
// or too-large integer) were converted by a C++ cast, undefined for floats and wrapping
// otherwise, so a damaged view could decode. Each is now kCorruption.
TEST(ViewTest, NumbersOutsideTheirTypeAreCorruption) {
  auto v = MustBuild(nullptr, Peers(3), 1);
  const std::string bytes = v->Encode();
  auto with = [&](const std::string& from, const std::string& to) {
    std::string out = bytes;
    size_t at = out.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return out.replace(at, from.size(), to);
  };
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\"weight\":100", "\"weight\":1e30"},
           {"\"weight\":100", "\"weight\":4294967396"},  // 2^32 + 100
           {"\"weight\":100", "\"weight\":-1"},
           {"\"slot_bits\":12", "\"slot_bits\":4294967308"},  // 2^32 + 12
           {"\"slot_bits\":12", "\"slot_bits\":1e97"},
           {"\"epoch\":1", "\"epoch\":1.5e300"}}) {
    EXPECT_EQ(View::Decode(with(from, to)).status().code(), Code::kCorruption) << to;
  }
}

TEST(ViewTest, RoutesNameThePreviousOwnerOnlyForMovedSlots) {
  auto v1 = MustBuild(nullptr, Peers(4), 1);
  auto v2 = MustBuild(v1.get(), Peers(5), 2);
  int moved = 0, total = 2000;
  for (int i = 0; i < total; i++) {
    Route r1 = v1->RouteOf("az://c/data.bin", i, 2);
    Route r2 = v2->RouteOf("az://c/data.bin", i, 2);
    ASSERT_EQ(r2.replicas.size(), 2u);
    EXPECT_NE(r2.replicas[0].member.id, r2.replicas[1].member.id);
    EXPECT_FALSE(r1.previous.has_value());
    if (r1.replicas[0].member.id != r2.replicas[0].member.id) {
      moved++;
      ASSERT_TRUE(r2.previous.has_value());
      EXPECT_EQ(r2.previous->member.id, r1.replicas[0].member.id);
      EXPECT_EQ(r2.replicas[0].member.id, "n4");  // a join moves slots only to the new node
    } else {
      EXPECT_FALSE(r2.previous.has_value());
    }
  }
  // About 1/5 of the chunks move to the new node.
  EXPECT_GT(moved, total / 5 - total / 20);
  EXPECT_LT(moved, total / 5 + total / 20);
}

TEST(ViewTest, EpochsMustGrow) {
  auto v1 = MustBuild(nullptr, Peers(2), 5);
  EXPECT_EQ(View::Build(v1.get(), Peers(3), 5).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace shoal::cluster

#include "cluster/membership.h"

#include <gtest/gtest.h>

namespace shoal::cluster {
namespace {

TEST(MembershipTest, StaticPeersParseWithDefaults) {
  auto peers = ParsePeers("a=10.0.0.1:7070, b=10.0.0.2:7071:200:rack2,c=localhost:7072:50");
  ASSERT_TRUE(peers.ok()) << peers.status().ToString();
  ASSERT_EQ(peers->size(), 3u);
  EXPECT_EQ((*peers)[0].member.id, "a");
  EXPECT_EQ((*peers)[0].endpoint, "10.0.0.1:7070");
  EXPECT_EQ((*peers)[0].member.weight, 100u);
  EXPECT_EQ((*peers)[0].member.domain, "a");
  EXPECT_EQ((*peers)[1].member.weight, 200u);
  EXPECT_EQ((*peers)[1].member.domain, "rack2");
  EXPECT_EQ((*peers)[2].member.weight, 50u);
}

TEST(MembershipTest, BracketedIpv6PeersParse) {
  auto peers = ParsePeers("a=[::1]:7070,b=[fe80::2]:7071:200:rack2,c=10.0.0.3:7072");
  ASSERT_TRUE(peers.ok()) << peers.status().ToString();
  ASSERT_EQ(peers->size(), 3u);
  EXPECT_EQ((*peers)[0].endpoint, "[::1]:7070");
  EXPECT_EQ((*peers)[1].endpoint, "[fe80::2]:7071");
  EXPECT_EQ((*peers)[1].member.weight, 200u);
  EXPECT_EQ((*peers)[1].member.domain, "rack2");
  EXPECT_EQ((*peers)[2].endpoint, "10.0.0.3:7072");
}

// Regression: the weight went through strtoul, which skips spaces and takes a sign.
TEST(MembershipTest, AWeightWithASignOrSpaceIsRefused) {
  for (std::string text : {"a=h:1:+5", "a=h:1: 5", "a=h:1:-1", "a=h:1:5 :d", "a=h:1:18446744073709551617"}) {
    auto peers = ParsePeers(text);
    EXPECT_FALSE(peers.ok()) << text << " -> weight " << (*peers)[0].member.weight;
    if (!peers.ok()) {
      EXPECT_NE(peers.status().message().find("weight"), std::string::npos) << text;
    }
  }
}

TEST(MembershipTest, BadEntriesAreNamed) {
  for (std::string text : {"", "a", "=h:1", "a=h", "a=h:0", "a=h:99999", "a=h:1:0", "a=h:1:x",
                                  "a=h:1,a=g:2", "a=h:1:2:d:e", "a=::1:7070", "a=[::1]", "a=[::1]x:80",
                                  "a=[::1]:70000", "a=h:"}) {
    auto peers = ParsePeers(text);
    EXPECT_FALSE(peers.ok()) << text;
    if (!peers.ok()) {
      EXPECT_NE(peers.status().message().find("--peers"), std::string::npos) << text;
    }
  }
}

}  // namespace
}  // namespace shoal::cluster

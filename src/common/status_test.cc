#include "common/status.h"

#include <gtest/gtest.h>

namespace shoal {
namespace {

TEST(Status, HasNoDetailUnlessGivenOne) {
  EXPECT_EQ(Status::Unavailable("x").detail(), Detail::kNone);
  EXPECT_FALSE(Status::Ok().IsConnectFailed());
}

TEST(Status, WithDetailKeepsTheCodeAndMessage) {
  Status st = Status::Unavailable("GET x: Couldn't connect").WithDetail(Detail::kConnectFailed);
  EXPECT_TRUE(st.IsConnectFailed());
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(st.message(), "GET x: Couldn't connect");
}

TEST(Status, WithContextKeepsTheDetail) {
  Status st = Status::Unavailable("refused").WithDetail(Detail::kConnectFailed).WithContext("node n1");
  EXPECT_TRUE(st.IsConnectFailed());
  EXPECT_EQ(st.message(), "node n1: refused");
}

}  // namespace
}  // namespace shoal

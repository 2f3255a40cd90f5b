#include "node/peer_health.h"

#include <gtest/gtest.h>

namespace shoal::node {
namespace {

using Clock = PeerHealth::Clock;
const Status kReset = Status::Unavailable("GET http://n1/v1/object: Connection reset by peer");
const Status kRefused = Status::Unavailable("GET http://n1/v1/object: Couldn't connect").WithDetail(Detail::kConnectFailed);

TEST(PeerHealth, OneFailedRequestDoesNotMarkALivePeerDown) {
  PeerHealth h;
  auto t = Clock::now();
  EXPECT_FALSE(h.Failed("n1", kReset, t));
  EXPECT_FALSE(h.Down("n1", t));
  h.Answered("n1");  // it answers others: the count starts again
  EXPECT_FALSE(h.Failed("n1", kReset, t));
  EXPECT_FALSE(h.Failed("n1", kReset, t));
  EXPECT_FALSE(h.Down("n1", t));
  EXPECT_TRUE(h.Failed("n1", kReset, t)) << "the third in a row";
  EXPECT_TRUE(h.Down("n1", t));
  EXPECT_FALSE(h.Down("n2", t));
}

// A request that waited for one of this node's own busy connections to the peer and gave up
// never reached it: however many, the peer stays up.
TEST(PeerHealth, ARequestThatFoundEveryConnectionBusyDoesNotCount) {
  PeerHealth h;
  auto t = Clock::now();
  const Status busy = Status::Unavailable("HEAD http://n1/v1/object: all 16 connections to http://n1 stayed busy")
                          .WithDetail(Detail::kConnectionsBusy);
  for (int i = 0; i < 5; i++) EXPECT_FALSE(h.Failed("n1", busy, t));
  EXPECT_FALSE(h.Down("n1", t));
  EXPECT_FALSE(h.Failed("n1", kReset, t));
  EXPECT_FALSE(h.Failed("n1", kReset, t)) << "two failures of its own, not seven";
  EXPECT_FALSE(h.Down("n1", t));
}

TEST(PeerHealth, NothingListeningMarksItDownAtOnceForAWhile) {
  PeerHealth h;
  auto t = Clock::now();
  EXPECT_TRUE(h.Failed("n1", kRefused, t));
  EXPECT_TRUE(h.Down("n1", t + PeerHealth::kDownFor - std::chrono::milliseconds(1)));
  EXPECT_FALSE(h.Down("n1", t + PeerHealth::kDownFor));  // tried again
  // Failing again while down extends it, without counting as a new mark.
  EXPECT_TRUE(h.Failed("n1", kRefused, t + PeerHealth::kDownFor));
  EXPECT_FALSE(h.Failed("n1", kRefused, t + PeerHealth::kDownFor + std::chrono::seconds(1)));
  EXPECT_TRUE(h.Down("n1", t + 2 * PeerHealth::kDownFor));
}

// A peer that asks this node for something that only a running node asks (it started again)
// is no longer skipped, though its time down is not up.
TEST(PeerHealth, APeerHeardFromIsNoLongerDown) {
  PeerHealth h;
  auto t = Clock::now();
  EXPECT_TRUE(h.Failed("n1", kRefused, t));
  EXPECT_TRUE(h.Down("n1", t + std::chrono::seconds(1)));
  h.Heard("n1");
  EXPECT_FALSE(h.Down("n1", t + std::chrono::seconds(1)));
  EXPECT_TRUE(h.Failed("n1", kRefused, t + std::chrono::seconds(2))) << "down again at its next refusal";
}

TEST(PeerHealth, ARestartingPeerIsAwaitedUntilItsTimeIsUpOrItFailsAgainAfterComingBack) {
  PeerHealth h;
  auto t = Clock::now();
  EXPECT_FALSE(h.Awaited("n1", t));
  h.Restarting("n1", std::chrono::seconds(20), t);
  h.Answered("n1");  // still serving as it stops: it has not been away yet
  EXPECT_TRUE(h.Awaited("n1", t));
  EXPECT_FALSE(h.Away("n1", t));
  EXPECT_TRUE(h.Failed("n1", kRefused, t)) << "awaited, yet down for the calls that skip down peers";
  EXPECT_TRUE(h.Awaited("n1", t + std::chrono::seconds(19)));
  EXPECT_TRUE(h.Away("n1", t + std::chrono::seconds(19))) << "a failed read waits for it";
  h.Answered("n1");  // back
  EXPECT_FALSE(h.Down("n1", t)) << "back: no longer skipped";
  EXPECT_FALSE(h.Away("n1", t)) << "back: a read that fails does not wait";
  // A read sent here by a node or client that tried it while it was away still asks it, not
  // the store: before, its answer ended the wait, and such a read went to the store.
  EXPECT_TRUE(h.Awaited("n1", t + std::chrono::seconds(1)));
  EXPECT_FALSE(h.Failed("n1", kReset, t + std::chrono::seconds(1)));
  EXPECT_FALSE(h.Awaited("n1", t + std::chrono::seconds(1))) << "failing after it came back ends its restart";
  EXPECT_FALSE(h.Away("n1", t + std::chrono::seconds(1)));
  EXPECT_FALSE(h.Awaited("n2", t));

  h.Restarting("n2", std::chrono::seconds(20), t);
  EXPECT_TRUE(h.Failed("n2", kRefused, t));
  EXPECT_TRUE(h.Awaited("n2", t + std::chrono::seconds(20) - std::chrono::milliseconds(1)));
  EXPECT_FALSE(h.Awaited("n2", t + std::chrono::seconds(20))) << "it did not come back in time";
  EXPECT_FALSE(h.Away("n2", t + std::chrono::seconds(20)));
}

}  // namespace
}  // namespace shoal::node

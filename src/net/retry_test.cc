#include "net/retry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

namespace shoal::net {
namespace {

using std::chrono::milliseconds;

RetryPolicy Policy(int64_t base_ms, int64_t max_ms) {
  RetryPolicy p;
  p.base = milliseconds(base_ms);
  p.max_delay = milliseconds(max_ms);
  return p;
}

TEST(Backoff, TheCeilingDoublesFromTheBaseUpToMaxDelay) {
  Backoff b(Policy(100, 1000));
  std::vector<int64_t> ceilings;
  for (int i = 0; i < 7; i++) {
    ceilings.push_back(b.Ceiling().count());
    b.Next();
  }
  EXPECT_EQ(ceilings, (std::vector<int64_t>{100, 200, 400, 800, 1000, 1000, 1000}));
  EXPECT_EQ(b.failures(), 7);
}

TEST(Backoff, EveryWaitIsWithinZeroAndTheCeiling) {
  Backoff b(Policy(50, 5000));
  for (int i = 0; i < 1000; i++) {
    if (i % 20 == 0) b.Reset();
    int64_t ceiling = b.Ceiling().count();
    int64_t wait = b.Next().count();
    ASSERT_GE(wait, 0) << "draw " << i;
    ASSERT_LE(wait, ceiling) << "draw " << i;
  }
}

TEST(Backoff, WaitsSpreadOverTheWholeWindow) {
  Backoff b(Policy(1000, 1000));
  std::set<int64_t> seen;
  int64_t low = 1000, high = 0;
  for (int i = 0; i < 2000; i++) {
    int64_t w = b.Next().count();
    seen.insert(w);
    low = std::min(low, w);
    high = std::max(high, w);
  }
  // Uniform over 1001 values: 2000 draws miss the lowest or highest tenth with odds ~1e-91.
  EXPECT_LT(low, 100);
  EXPECT_GT(high, 900);
  EXPECT_GT(seen.size(), 500u);
}

TEST(Backoff, ResetStartsAgainFromTheBase) {
  Backoff b(Policy(10, 10000));
  for (int i = 0; i < 5; i++) b.Next();
  EXPECT_EQ(b.Ceiling(), milliseconds(320));
  b.Reset();
  EXPECT_EQ(b.failures(), 0);
  EXPECT_EQ(b.Ceiling(), milliseconds(10));
  EXPECT_LE(b.Next(), milliseconds(10));
}

TEST(Backoff, ManyFailuresStayAtMaxDelayWithoutOverflow) {
  Backoff b(Policy(1, 3000));
  for (int i = 0; i < 1000; i++) ASSERT_LE(b.Next(), milliseconds(3000));
  EXPECT_EQ(b.Ceiling(), milliseconds(3000));
}

TEST(Backoff, LoopsOnTwoThreadsDoNotWaitInStep) {
  auto draws = [] {
    Backoff b(Policy(1000000, 1000000));
    std::vector<int64_t> out;
    for (int i = 0; i < 8; i++) out.push_back(b.Next().count());
    return out;
  };
  std::vector<int64_t> a, c;
  std::thread t1([&] { a = draws(); });
  std::thread t2([&] { c = draws(); });
  t1.join();
  t2.join();
  EXPECT_NE(a, c);
}

TEST(RunWithRetry, HonoursRetryAfterOverItsOwnBackoff) {
  std::vector<milliseconds> sleeps;
  RetryPolicy policy;
  policy.sleep = [&](milliseconds d) { sleeps.push_back(d); };
  int calls = 0;
  Status st = RunWithRetry(policy, nullptr, [&](milliseconds* retry_after) {
    if (++calls == 1) {
      *retry_after = milliseconds(2000);
      return Status::Unavailable("503 ServerBusy");
    }
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(sleeps.size(), 1u);
  EXPECT_EQ(sleeps[0], milliseconds(2000));
}

TEST(RunWithRetry, ALongRetryAfterIsCapped) {
  std::vector<milliseconds> sleeps;
  RetryPolicy policy;
  policy.max_attempts = 2;
  policy.sleep = [&](milliseconds d) { sleeps.push_back(d); };
  Status st = RunWithRetry(policy, nullptr, [&](milliseconds* retry_after) {
    *retry_after = milliseconds(3600 * 1000);
    return Status::Unavailable("503 SlowDown");
  });
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(sleeps, std::vector<milliseconds>{kMaxRetryAfter});
}

TEST(RunWithRetry, BacksOffWithinBoundsAndGivesUpAfterMaxAttempts) {
  std::vector<milliseconds> sleeps;
  RetryPolicy policy;
  policy.sleep = [&](milliseconds d) { sleeps.push_back(d); };
  RequestStats stats;
  int calls = 0;
  Status st = RunWithRetry(policy, &stats, [&](milliseconds*) {
    calls++;
    return Status::Unavailable("connection reset");
  });
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("after 12 attempts"), std::string::npos) << st.message();
  EXPECT_EQ(calls, policy.max_attempts);
  EXPECT_EQ(stats.requests.load(), 12u);
  EXPECT_EQ(stats.retries.load(), 11u);
  ASSERT_EQ(sleeps.size(), 11u);
  for (size_t i = 0; i < sleeps.size(); i++) {
    int64_t cap = std::min<int64_t>(policy.max_delay.count(), policy.base.count() << i);
    EXPECT_GE(sleeps[i].count(), 0);
    EXPECT_LE(sleeps[i].count(), cap) << "attempt " << i;
  }
}

TEST(RunWithRetry, FinalErrorsAreNotRetried) {
  RetryPolicy policy;
  policy.sleep = [](milliseconds) { FAIL() << "slept before a final error"; };
  int calls = 0;
  Status st = RunWithRetry(policy, nullptr, [&](milliseconds*) {
    calls++;
    return Status::PermissionDenied("403");
  });
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace shoal::net

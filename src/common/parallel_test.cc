#include "common/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace shoal {
namespace {

TEST(ForEachAtOnce, CallsEveryItemOnceAndNeverMoreAtOnceThanAsked) {
  constexpr size_t kItems = 200, kAtOnce = 5;
  std::vector<std::atomic<int>> calls(kItems);
  std::atomic<int> running{0}, most{0};
  std::mutex mu;
  std::set<size_t> workers;
  ForEachResult r = ForEachAtOnce(kItems, kAtOnce, OnFailure::kStop, [&](size_t item, size_t worker) {
    int now = ++running;
    for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
    }
    calls[item]++;
    {
      std::lock_guard<std::mutex> lock(mu);
      workers.insert(worker);
    }
    std::this_thread::yield();
    running--;
    return Status::Ok();
  });
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.first.ok());
  for (size_t i = 0; i < kItems; i++) EXPECT_EQ(calls[i].load(), 1) << "item " << i;
  EXPECT_LE(most.load(), static_cast<int>(kAtOnce));
  EXPECT_GE(most.load(), 1);
  for (size_t w : workers) EXPECT_LT(w, kAtOnce);
}

TEST(ForEachAtOnce, NoItemStartsAfterAFailureWhenToldToStop) {
  std::vector<size_t> ran;
  ForEachResult r = ForEachAtOnce(10, 1, OnFailure::kStop, [&](size_t item, size_t) {
    ran.push_back(item);
    return item == 3 ? Status::IOError("item 3 failed") : Status::Ok();
  });
  EXPECT_EQ(ran, (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.first.message(), "item 3 failed");
}

TEST(ForEachAtOnce, EveryItemRunsWhenToldToGoOnAndTheFirstFailureIsKept) {
  std::atomic<size_t> ran{0};
  ForEachResult r = ForEachAtOnce(30, 4, OnFailure::kGoOn, [&](size_t item, size_t) {
    ran++;
    return item % 10 == 9 ? Status::IOError("item " + std::to_string(item)) : Status::Ok();
  });
  EXPECT_EQ(ran.load(), 30u);
  EXPECT_EQ(r.failed, 3u);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.first.message().rfind("item ", 0), 0u) << r.first.ToString();
}

TEST(ForEachAtOnce, NothingToDoStartsNoThreadAndSucceeds) {
  bool called = false;
  ForEachResult r = ForEachAtOnce(0, 8, OnFailure::kStop, [&](size_t, size_t) {
    called = true;
    return Status::Ok();
  });
  EXPECT_FALSE(called);
  EXPECT_TRUE(r.ok());
}

TEST(ForEachAtOnce, NoMoreWorkersThanItemsAndAtLeastOne) {
  std::mutex mu;
  std::set<size_t> workers;
  auto record = [&](size_t, size_t worker) {
    std::lock_guard<std::mutex> lock(mu);
    workers.insert(worker);
    return Status::Ok();
  };
  ForEachAtOnce(2, 16, OnFailure::kStop, record);
  for (size_t w : workers) EXPECT_LT(w, 2u);
  workers.clear();
  ForEachAtOnce(3, 0, OnFailure::kStop, record);
  EXPECT_EQ(workers, (std::set<size_t>{0}));
}

}  // namespace
}  // namespace shoal

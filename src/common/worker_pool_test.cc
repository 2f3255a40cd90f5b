#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <dirent.h>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace shoal {
namespace {

TEST(WorkerPoolTest, RunsEveryTaskOnItsOwnThreadsOnly) {
  std::mutex mu;
  std::set<std::thread::id> seen;
  std::atomic<int> ran{0};
  {
    WorkerPool pool(3, "test-pool");
    for (int i = 0; i < 1000; i++) {
      pool.Submit([&] {
        std::lock_guard<std::mutex> lock(mu);
        seen.insert(std::this_thread::get_id());
        ran++;
      });
    }
  }  // the destructor runs what is queued
  EXPECT_EQ(ran.load(), 1000);
  EXPECT_LE(seen.size(), 3u);
  EXPECT_EQ(seen.count(std::this_thread::get_id()), 0u);
}

TEST(WorkerPoolTest, TakesMoveOnlyTasks) {
  WorkerPool pool(1, "test-pool");
  std::promise<int> p;
  auto f = p.get_future();
  auto owned = std::make_unique<int>(7);
  pool.Submit([owned = std::move(owned), p = std::move(p)]() mutable { p.set_value(*owned); });
  EXPECT_EQ(f.get(), 7);
}

TEST(WorkerPoolTest, ThreadCountIsFixedWhateverTheLoad) {
  auto tasks_now = [] {
    int n = 0;
    DIR* d = opendir("/proc/self/task");
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    return n;
  };
  int before = tasks_now();
  WorkerPool pool(2, "test-pool");
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::atomic<int> started{0};
  for (int i = 0; i < 50; i++) {
    pool.Submit([&, open] {
      started++;
      open.wait();
    });
  }
  while (started.load() < 2) std::this_thread::yield();
  EXPECT_EQ(tasks_now(), before + 2);
  EXPECT_EQ(pool.queued(), 48u);
  gate.set_value();
}

// A delayed task holds no thread while it waits: with the pool's one thread, a task submitted
// after one due in an hour runs at once; one due soon runs when due; and the destructor runs
// the one not yet due rather than drop it.
TEST(WorkerPoolTest, ADelayedTaskHoldsNoThreadWhileItWaits) {
  std::mutex mu;
  std::vector<std::string> order;
  auto note = [&](const char* what) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(what);
  };
  {
    WorkerPool pool(1, "test-pool");
    pool.SubmitAfter(std::chrono::hours(1), [&] { note("in an hour"); });
    std::promise<void> now_ran, soon_ran;
    pool.Submit([&] {
      note("now");
      now_ran.set_value();
    });
    now_ran.get_future().wait();
    pool.SubmitAfter(std::chrono::milliseconds(50), [&] {
      note("soon");
      soon_ran.set_value();
    });
    soon_ran.get_future().wait();
  }
  EXPECT_EQ(order, (std::vector<std::string>{"now", "soon", "in an hour"}));
}

// Several threads wait for the earliest due time at once, and the one that runs a task takes
// it out of the queue: a thread still waiting must not read that task's time afterwards (it
// waited on a reference into the queue: a use after free, which AddressSanitizer reported from
// a shoald whose reads were retried later, and this test under SANITIZE=1).
TEST(WorkerPoolTest, ManyThreadsWaitingForDelayedTasksRunEachOnce) {
  std::atomic<int> ran{0};
  constexpr int kTasks = 400;
  {
    WorkerPool pool(4, "test-pool");
    for (int i = 0; i < kTasks; i++) {
      pool.SubmitAfter(std::chrono::microseconds(200 * (i % 13)), [&] { ran++; });
      if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    while (ran.load() < kTasks) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(ran.load(), kTasks);
}

TEST(WorkerPoolTest, GrowsButNeverShrinks) {
  WorkerPool pool(2, "test-pool");
  EXPECT_EQ(pool.threads(), 2u);
  pool.Grow(5);
  EXPECT_EQ(pool.threads(), 5u);
  pool.Grow(3);
  EXPECT_EQ(pool.threads(), 5u);
  std::atomic<int> started{0};
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  for (int i = 0; i < 5; i++) {
    pool.Submit([&, open] {
      started++;
      open.wait();
    });
  }
  while (started.load() < 5) std::this_thread::yield();  // all five at once: five threads
  gate.set_value();
}

}  // namespace
}  // namespace shoal

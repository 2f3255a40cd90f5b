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

// Submits `n` tasks to `pool` that each count themselves in `started`, then wait for `open`.
void SubmitWaiting(WorkerPool& pool, int n, std::atomic<int>& started, const std::shared_future<void>& open) {
  for (int i = 0; i < n; i++) {
    pool.Submit([&started, open] {
      started++;
      open.wait();
    });
  }
}

int TasksNow() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

TEST(WorkerPoolTest, ThreadCountIsFixedWhateverTheLoad) {
  auto tasks_now = TasksNow;
  int before = tasks_now();
  WorkerPool pool(2, "test-pool");
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::atomic<int> started{0};
  SubmitWaiting(pool, 50, started, open);
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
  SubmitWaiting(pool, 5, started, open);
  while (started.load() < 5) std::this_thread::yield();  // all five at once: five threads
  gate.set_value();
}

// An elastic pool keeps its few threads at rest, starts one more for each task that finds every
// thread busy, never more than its bound (the rest queue), and ends the extra ones once idle.
TEST(WorkerPoolTest, AnElasticPoolGrowsToItsBoundWhileBusyAndShrinksBackWhenIdle) {
  const int before = TasksNow();
  auto pool = WorkerPool::Elastic(2, 6, "test-pool", std::chrono::milliseconds(100));
  EXPECT_EQ(TasksNow(), before + 2);
  EXPECT_EQ(pool->threads(), 2u);
  EXPECT_EQ(pool->most(), 6u);
  std::atomic<int> started{0};
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  SubmitWaiting(*pool, 4, started, open);
  // Four at once: four threads, the two kept and two started, not one more (a pool that
  // started a thread for every task would have six).
  while (started.load() < 4) std::this_thread::yield();
  EXPECT_EQ(pool->threads(), 4u);
  SubmitWaiting(*pool, 10, started, open);
  while (started.load() < 6) std::this_thread::yield();
  EXPECT_EQ(pool->threads(), 6u);
  EXPECT_EQ(TasksNow(), before + 6);
  EXPECT_EQ(pool->queued(), 8u);  // past the bound, tasks wait
  gate.set_value();
  while (started.load() < 14) std::this_thread::yield();
  // Idle, the four beyond the two kept end (each after 100 ms without a task).
  while (pool->threads() > 2u) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(pool->threads(), 2u);
  // An ended thread is joined by the next Submit: the process has two threads of the pool again.
  std::promise<void> ran;
  pool->Submit([&] { ran.set_value(); });
  ran.get_future().wait();
  EXPECT_EQ(TasksNow(), before + 2);
  pool.reset();
  EXPECT_EQ(TasksNow(), before);
}

}  // namespace
}  // namespace shoal

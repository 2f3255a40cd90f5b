#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace shoal {

// Threads running submitted tasks in FIFO order: the one place the node runs blocking work
// (disk reads and fsyncs, fetches from the object store and from peers), so the number of
// threads never grows with the number of connections or requests. A fixed pool keeps its
// threads; an elastic one (Elastic) keeps a few at rest, starts more, up to its bound, when a
// task finds every thread busy, and ends those beyond the few once idle for a while: for work
// that mostly waits (a fetch following a slow peer), whose threads are needed only while it
// lasts.
//
// Contract: a task must never wait for another task of the same pool (it may be queued
// behind the waiter: a deadlock once every thread waits). Tasks run to completion; the
// destructor runs what is queued, then joins. Thread-safe.
class WorkerPool {
 public:
  // `threads` >= 1; `name` shows in `top -H` and /proc/PID/task/*/comm (at most 15 chars).
  WorkerPool(size_t threads, std::string name);
  // At most `most` threads, `kept` (<= most) of them at rest; a thread beyond those ends after
  // `idle` without a task.
  static std::unique_ptr<WorkerPool> Elastic(size_t kept, size_t most, std::string name,
                                             std::chrono::steady_clock::duration idle = std::chrono::seconds(10));
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task` (move-only callables too). Never blocks.
  template <class F>
  void Submit(F&& task) {
    if constexpr (std::is_copy_constructible_v<std::decay_t<F>>) {
      Push(std::function<void()>(std::forward<F>(task)));
    } else {
      auto held = std::make_shared<std::decay_t<F>>(std::forward<F>(task));
      Push([held] { (*held)(); });
    }
  }

  // Queues `task` to run once `delay` has passed (in FIFO order with what is queued then),
  // holding no thread meanwhile: a task that must wait for something outside the pool
  // submits its next attempt this way instead of sleeping. Never blocks. Once the pool is
  // being destroyed, runs it without the delay.
  void SubmitAfter(std::chrono::steady_clock::duration delay, std::function<void()> task);

  // Keeps `threads` threads at least, and lets it have that many at most (never fewer: its
  // bounds do not shrink). Not to be called while the pool is being destroyed.
  void Grow(size_t threads);
  // Threads running now.
  size_t threads();
  // The most threads it may run.
  size_t most();
  // Tasks waiting for a thread (for metrics).
  size_t queued();

 private:
  WorkerPool(size_t kept, size_t most, std::string name, std::chrono::steady_clock::duration idle);
  void Push(std::function<void()> task);
  void Spawn();  // mu_ held
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  // SubmitAfter's tasks by when they are due; moved to tasks_ then. Guarded by mu_.
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> delayed_;
  bool stopping_ = false;                    // guarded by mu_
  std::string name_;
  const std::chrono::steady_clock::duration idle_end_;
  size_t kept_ = 0, most_ = 0;  // guarded by mu_
  size_t idle_ = 0;             // threads not running a task; guarded by mu_
  // Running threads by id; one that ends moves itself to ended_, joined (unlocked) by the next
  // Submit, Grow or the destructor. Guarded by mu_.
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread> ended_;
};

}  // namespace shoal

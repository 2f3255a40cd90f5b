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

// A fixed number of threads running submitted tasks in FIFO order: the one place the node
// runs blocking work (disk reads and fsyncs, fetches from the object store and from peers),
// so the number of threads never grows with the number of connections or requests.
//
// Contract: a task must never wait for another task of the same pool (it may be queued
// behind the waiter: a deadlock once every thread waits). Tasks run to completion; the
// destructor runs what is queued, then joins. Thread-safe.
class WorkerPool {
 public:
  // `threads` >= 1; `name` shows in `top -H` and /proc/PID/task/*/comm (at most 15 chars).
  WorkerPool(size_t threads, std::string name);
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

  // Adds threads up to `threads` in all (never fewer: a pool does not shrink). Not to be
  // called while the pool is being destroyed.
  void Grow(size_t threads);
  size_t threads();
  // Tasks waiting for a thread (for metrics).
  size_t queued();

 private:
  void Push(std::function<void()> task);
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  // SubmitAfter's tasks by when they are due; moved to tasks_ then. Guarded by mu_.
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> delayed_;
  bool stopping_ = false;                    // guarded by mu_
  std::string name_;
  std::vector<std::thread> threads_;  // guarded by mu_ (joined by the destructor unlocked)
};

}  // namespace shoal

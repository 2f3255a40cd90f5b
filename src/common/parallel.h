#pragma once

// Loops over independent blocking work (one request each: copying, writing or deleting the
// objects of a prefix, warming chunks), a bounded number at a time, on threads started for
// the loop and joined before it returns. For work that runs for the life of a process, queued
// from many places, use WorkerPool instead.
//
// Thread-safety: ErrorSlot may be used from any thread at once; the functions are reentrant
// (a `fn` may run a loop of its own).

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>

#include "common/status.h"

namespace shoal {

// The first error of several threads; the others see failed() at their next check and stop.
class ErrorSlot {
 public:
  void Set(const Status& st);
  bool failed() const { return failed_.load(); }
  Status Get();

 private:
  std::mutex mu_;
  Status status_;  // guarded by mu_
  std::atomic<bool> failed_{false};
};

// Runs `fn` on `threads` threads at once (at least one) and joins them.
void RunWorkers(size_t threads, const std::function<void()>& fn);

enum class OnFailure {
  kStop,  // no item starts after one failed (those running finish)
  kGoOn,  // every item runs (deleting what can be deleted, say)
};

struct ForEachResult {
  Status first;       // the first failure, in the order they happened; ok when none
  size_t failed = 0;  // items whose fn failed
  bool ok() const { return failed == 0; }
};

// Calls fn(item, worker) for item = 0 .. count-1, in that order of starting, at most
// `at_once` at a time (at least one, never more threads than items). `worker` (below
// min(at_once, count)) names the thread: no two calls with the same worker overlap, so a
// caller may keep one connection per worker.
ForEachResult ForEachAtOnce(size_t count, size_t at_once, OnFailure on_failure,
                            const std::function<Status(size_t item, size_t worker)>& fn);

}  // namespace shoal

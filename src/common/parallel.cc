#include "common/parallel.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace shoal {

void ErrorSlot::Set(const Status& st) {
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.ok()) status_ = st;
  failed_ = true;
}

Status ErrorSlot::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void RunWorkers(size_t threads, const std::function<void()>& fn) {
  std::vector<std::thread> running;
  for (size_t i = 0; i < std::max<size_t>(1, threads); i++) running.emplace_back(fn);
  for (auto& t : running) t.join();
}

ForEachResult ForEachAtOnce(size_t count, size_t at_once, OnFailure on_failure,
                            const std::function<Status(size_t item, size_t worker)>& fn) {
  std::atomic<size_t> next{0}, failed{0}, workers{0};
  ErrorSlot first;
  if (count > 0) {
    RunWorkers(std::min(std::max<size_t>(1, at_once), count), [&] {
      const size_t worker = workers++;
      for (size_t i; (i = next++) < count;) {
        if (on_failure == OnFailure::kStop && first.failed()) return;
        Status st = fn(i, worker);
        if (st.ok()) continue;
        failed++;
        first.Set(st);
      }
    });
  }
  return ForEachResult{first.Get(), failed.load()};
}

}  // namespace shoal

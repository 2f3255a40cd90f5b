#include "net/retry.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <thread>

namespace shoal::net {

std::chrono::milliseconds Backoff::Ceiling() const {
  int64_t cap = std::max<int64_t>(base_.count(), 0);
  for (int i = 0; i < failures_ && cap > 0 && cap < max_.count(); i++) cap *= 2;
  return std::chrono::milliseconds(std::min<int64_t>(cap, max_.count()));
}

std::chrono::milliseconds Backoff::Next() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  int64_t cap = Ceiling().count();
  if (failures_ < 64) failures_++;
  std::uniform_int_distribution<int64_t> dist(0, std::max<int64_t>(cap, 1));
  return std::chrono::milliseconds(dist(rng));
}

Status RunWithRetry(const RetryPolicy& policy, RequestStats* stats, const Attempt& attempt) {
  Backoff backoff(policy);
  Status st;
  for (int i = 1;; i++) {
    std::chrono::milliseconds retry_after{0};
    if (stats != nullptr) stats->requests++;
    st = attempt(&retry_after);
    if (st.ok() || !st.IsTransient()) return st;
    if (i >= policy.max_attempts) break;
    if (stats != nullptr) stats->retries++;
    std::chrono::milliseconds delay = backoff.Next();
    if (retry_after.count() > 0) delay = std::min(retry_after, kMaxRetryAfter);
    if (policy.sleep) {
      policy.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
  return Status(st.code(), st.message() + " (after " + std::to_string(policy.max_attempts) +
                               " attempts; the server is overloaded or unreachable: try again later)")
      .WithDetail(st.detail());
}

}  // namespace shoal::net

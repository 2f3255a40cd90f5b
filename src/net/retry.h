#pragma once

#include <chrono>
#include <functional>

#include "common/status.h"
#include "net/request_stats.h"

namespace shoal::net {

// Bounded exponential back-off with full jitter, the one retry policy of every loop that
// waits after a transient failure (object stores, a cache node, peers, etcd). The wait before
// retry n (from 1) is uniform in [0, min(max_delay, base * 2^(n-1))]: the window doubles up to
// max_delay, and clients that failed together (a restarted node, a throttled store) spread
// over it instead of coming back in step.
struct RetryPolicy {
  int max_attempts = 12;  // for RunWithRetry: attempts in all, the first one included
  std::chrono::milliseconds base{50};
  std::chrono::milliseconds max_delay{5000};
  // How RunWithRetry waits between attempts; tests replace it to see the delays without waiting.
  std::function<void(std::chrono::milliseconds)> sleep;
};

// The longest a server's Retry-After may make one retry wait.
inline constexpr std::chrono::milliseconds kMaxRetryAfter{60000};

// The waits of one retry loop under a policy (its base and max_delay). Not thread-safe: one
// per loop. The random draws come from a generator per thread, seeded from the system's
// entropy, so loops on many threads neither contend nor wait in step.
class Backoff {
 public:
  explicit Backoff(const RetryPolicy& policy) : Backoff(policy.base, policy.max_delay) {}
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max_delay)
      : base_(base), max_(max_delay) {}

  // The wait before the next attempt: uniform in [0, Ceiling()]; then the ceiling doubles.
  std::chrono::milliseconds Next();
  // After a success: the next wait is drawn from [0, base] again.
  void Reset() { failures_ = 0; }

  // The upper bound of the next Next(): min(max_delay, base * 2^failures()).
  std::chrono::milliseconds Ceiling() const;
  // Next() calls since construction or Reset() (counted up to 64).
  int failures() const { return failures_; }

 private:
  std::chrono::milliseconds base_;
  std::chrono::milliseconds max_;
  int failures_ = 0;
};

// One attempt of an operation: returns its Status; may set *retry_after to the wait the server
// asked for (a Retry-After header).
using Attempt = std::function<Status(std::chrono::milliseconds* retry_after)>;

// Runs `attempt` until it succeeds or fails with a non-transient code, at most
// policy.max_attempts times, waiting a Backoff between attempts (or the server's
// retry_after, capped at kMaxRetryAfter). Counts attempts and retries in stats (may be null).
// After the last attempt the transient error is returned with "(after N attempts ...)".
Status RunWithRetry(const RetryPolicy& policy, RequestStats* stats, const Attempt& attempt);

}  // namespace shoal::net

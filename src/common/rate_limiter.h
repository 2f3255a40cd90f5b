#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

namespace shoal {

// Bytes per second shared by many threads (a node's egress). Callers take what they send
// and, once the budget is overdrawn, sleep until it has refilled: over any stretch longer than
// a few slices the rate holds, whatever the number of senders. Rate 0: no limit. Thread-safe;
// SetRate applies to the bytes accounted after it.
class RateLimiter {
 public:
  explicit RateLimiter(uint64_t bytes_per_second = 0) : rate_(static_cast<double>(bytes_per_second)) {}

  uint64_t rate() const { return static_cast<uint64_t>(rate_.load()); }
  void SetRate(uint64_t bytes_per_second) {
    std::lock_guard<std::mutex> lock(mu_);
    rate_ = static_cast<double>(bytes_per_second);
    last_ = {};  // a new budget: the debt owed at the old rate is forgiven
  }

  // Accounts `n` bytes about to be sent, sleeping first if the budget is overdrawn.
  void Acquire(uint64_t n) {
    auto wait = Reserve(n);
    if (wait.count() > 0) std::this_thread::sleep_for(wait);
  }

  // Accounts `n` bytes about to be sent and returns how long to wait before sending them
  // (zero: at once), for callers that must not sleep in their thread (an event loop's timer).
  std::chrono::steady_clock::duration Reserve(uint64_t n) {
    using Clock = std::chrono::steady_clock;
    Clock::duration wait{};
    if (rate_.load() <= 0) return wait;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const double rate = rate_;
      if (rate <= 0) return wait;
      auto now = Clock::now();
      double burst = rate / 20;  // 50 ms of sending may go out at once
      if (last_ == Clock::time_point{}) {
        tokens_ = burst;
      } else {
        tokens_ = std::min(burst, tokens_ + rate * std::chrono::duration<double>(now - last_).count());
      }
      last_ = now;
      tokens_ -= static_cast<double>(n);
      if (tokens_ < 0) wait = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(-tokens_ / rate));
    }
    return wait;
  }

 private:
  std::atomic<double> rate_;  // written under mu_
  std::mutex mu_;
  double tokens_ = 0;                           // guarded by mu_; negative: debt
  std::chrono::steady_clock::time_point last_;  // guarded by mu_
};

}  // namespace shoal

#pragma once

#include <atomic>
#include <cstdint>

namespace shoal::net {

// Request and byte counts of one remote service (an object store, a cache node), for tests,
// metrics and benchmarks. Thread-safe: every field is atomic.
struct RequestStats {
  std::atomic<uint64_t> requests{0};       // every attempt, retries included
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> throttled{0};      // answers 429 or 503: the service asks for less load
  std::atomic<uint64_t> bytes_read{0};     // body bytes received
  std::atomic<uint64_t> bytes_written{0};  // body bytes sent

  // Counts a 429/503 answer, in `throttled` and for the calling thread, so that a caller can
  // tell whether its own request was throttled while other threads use the same service.
  void CountThrottle() {
    throttled++;
    ThreadThrottles()++;
  }
  static uint64_t& ThreadThrottles() {
    thread_local uint64_t n = 0;
    return n;
  }
};

}  // namespace shoal::net

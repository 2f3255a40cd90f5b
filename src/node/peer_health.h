#pragma once

// Which peers this node skips for now, from how its requests to them ended.
//
// A request refused at connect (Detail::kConnectFailed: nothing listens there, the node is
// gone or restarting) marks the peer down at once for kDownFor. Any other failure (a reset
// midway, a timeout, a bad answer) only counts: the peer is marked down once kFailuresToDown
// of them come in a row, so one bad request never sends a live peer's chunks to the store
// while it answers others. Any answer from the peer clears its count. A peer down is skipped
// until kDownFor has passed, then tried again (one more failure marks it down again).
//
// Thread-safe (one mutex). The clock is a parameter so tests step it.

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/status.h"

namespace shoal::node {

class PeerHealth {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kDownFor = std::chrono::seconds(3);
  static constexpr int kFailuresToDown = 3;

  // A request to `id` failed with `why`; true when this failure marked the peer down.
  bool Failed(const std::string& id, const Status& why, Clock::time_point now = Clock::now());
  // `id` answered (any HTTP status).
  void Answered(const std::string& id);
  // Whether `id` is to be skipped now.
  bool Down(const std::string& id, Clock::time_point now = Clock::now());

 private:
  struct State {
    int failures = 0;              // in a row, since the last answer
    Clock::time_point down_until;  // skipped before this
  };
  std::mutex mu_;
  std::unordered_map<std::string, State> peers_;  // guarded by mu_
};

}  // namespace shoal::node

#pragma once

// Which peers this node skips for now, from how its requests to them ended.
//
// A request refused at connect (Detail::kConnectFailed: nothing listens there, the node is
// gone or restarting) marks the peer down at once for kDownFor. Any other failure (a reset
// midway, a timeout, a bad answer) only counts: the peer is marked down once kFailuresToDown
// of them come in a row, so one bad request never sends a live peer's chunks to the store
// while it answers others. Any answer from the peer clears its count. A peer down is skipped
// until kDownFor has passed, then tried again (one more failure marks it down again). A request
// that never left this node because its connections to the peer were all busy
// (Detail::kConnectionsBusy, --peer-connections) does not count.
//
// A peer that said it is stopping to restart in place (Restarting) is awaited for the time it
// asked for: reads of its chunks ask it, not the object store, even a read that another node
// or a client sent here because that one could not reach it. While it is away (it failed since
// it said so, and has not answered since) a read that fails waits and asks again (Away). Once
// it answers it is back: no longer skipped, and still asked for the rest of its time (whoever
// sent a read here may have tried it while it was away); a failure after that is a new one,
// and ends the wait. Being awaited does not make it up: it is still marked down by its
// failures, so writes and other calls skip it meanwhile.
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
  // `id` sent this node a request that says it is up (it started again): no longer skipped.
  void Heard(const std::string& id);
  // Whether `id` is to be skipped now.
  bool Down(const std::string& id, Clock::time_point now = Clock::now());
  // `id` stops to restart in place and is to be back within `within`.
  void Restarting(const std::string& id, Clock::duration within, Clock::time_point now = Clock::now());
  // Whether `id` is awaited: it said it is restarting, the time it asked for has not passed,
  // and it has not failed again since it came back.
  bool Awaited(const std::string& id, Clock::time_point now = Clock::now());
  // Whether `id` is awaited and away: it failed since it said it restarts, and has not
  // answered since.
  bool Away(const std::string& id, Clock::time_point now = Clock::now());

 private:
  struct State {
    int failures = 0;              // in a row, since the last answer
    Clock::time_point down_until;  // skipped before this
    Clock::time_point awaited_until;  // restarting: awaited before this
    bool gone = false;                // restarting, and failed since it said so
    bool back = false;                // answered after it was gone: its restart is over
  };
  std::mutex mu_;
  std::unordered_map<std::string, State> peers_;  // guarded by mu_
};

}  // namespace shoal::node

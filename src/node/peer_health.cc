#include "node/peer_health.h"

namespace shoal::node {

bool PeerHealth::Failed(const std::string& id, const Status& why, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  State& s = peers_[id];
  s.failures++;
  if (why.detail() != Detail::kConnectFailed && s.failures < kFailuresToDown) return false;
  const bool was_up = now >= s.down_until;
  s.down_until = now + kDownFor;
  s.failures = 0;  // after kDownFor, one more connect failure or kFailuresToDown others
  return was_up;
}

void PeerHealth::Answered(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it != peers_.end()) it->second.failures = 0;
}

bool PeerHealth::Down(const std::string& id, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  return it != peers_.end() && now < it->second.down_until;
}

}  // namespace shoal::node

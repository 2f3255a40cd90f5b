#include "node/peer_health.h"

namespace shoal::node {

bool PeerHealth::Failed(const std::string& id, const Status& why, Clock::time_point now) {
  if (why.detail() == Detail::kConnectionsBusy) return false;  // nothing reached the peer
  std::lock_guard<std::mutex> lock(mu_);
  State& s = peers_[id];
  s.failures++;
  if (s.back) {  // failing again after its restart: not waited for any more
    s.awaited_until = Clock::time_point();
    s.back = false;
  }
  if (now < s.awaited_until) s.gone = true;
  if (why.detail() != Detail::kConnectFailed && s.failures < kFailuresToDown) return false;
  const bool was_up = now >= s.down_until;
  s.down_until = now + kDownFor;
  s.failures = 0;  // after kDownFor, one more connect failure or kFailuresToDown others
  return was_up;
}

void PeerHealth::Answered(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  it->second.failures = 0;
  if (it->second.gone) {  // back from its restart: no longer skipped, still asked until its time is up
    it->second.gone = false;
    it->second.back = true;
    it->second.down_until = Clock::time_point();
  }
}

void PeerHealth::Heard(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  it->second.failures = 0;
  it->second.down_until = Clock::time_point();
}

bool PeerHealth::Down(const std::string& id, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  return it != peers_.end() && now < it->second.down_until;
}

void PeerHealth::Restarting(const std::string& id, Clock::duration within, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  State& s = peers_[id];
  s.awaited_until = now + within;
  s.gone = false;
  s.back = false;
}

bool PeerHealth::Awaited(const std::string& id, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  return it != peers_.end() && now < it->second.awaited_until;
}

bool PeerHealth::Away(const std::string& id, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  return it != peers_.end() && now < it->second.awaited_until && it->second.gone;
}

}  // namespace shoal::node

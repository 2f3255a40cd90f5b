#include "cluster/swarm.h"

#include <algorithm>
#include <cstdint>

namespace shoal::cluster {

SwarmTracker::Chunk& SwarmTracker::Touch(const std::string& chunk) {
  auto now = std::chrono::steady_clock::now();
  auto it = chunks_.find(chunk);
  if (it != chunks_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    Chunk& c = it->second;
    if (now - c.asked > options_.idle) {  // a new burst: the holders may have dropped it since
      c.sent = 0;
      c.room.clear();
      c.holders = 0;
    }
    c.asked = now;
    return c;
  }
  // Forgetting a chunk still being sent only forgets its tree: its Release finds nothing.
  while (chunks_.size() >= options_.max_chunks && !lru_.empty()) {
    chunks_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(chunk);
  Chunk& c = chunks_[chunk];
  c.lru = lru_.begin();
  c.asked = now;
  return c;
}

void SwarmTracker::AddHolder(Chunk& c, const std::string& endpoint, int depth) {
  if (c.holders >= options_.max_holders) return;  // the tree grows narrower, not the memory
  c.room[depth].push_back(Holder{endpoint, 0});
  c.holders++;
}

std::string SwarmTracker::Route(const std::string& chunk, const std::string& from) {
  // Candidates looked at per choice: the oldest holders of the shallowest depths.
  constexpr int kLook = 8;
  std::lock_guard<std::mutex> lock(mu_);
  Chunk& c = Touch(chunk);
  if (options_.direct > 0 && (c.sent >= options_.direct || c.sending >= options_.direct) && !from.empty()) {
    std::deque<Holder>* best_queue = nullptr;
    size_t best_at = 0;
    int best_depth = 0;
    uint64_t best_load = 0;
    int looked = 0;
    for (auto& [depth, queue] : c.room) {
      for (size_t i = 0; i < queue.size() && looked < kLook; i++) {
        if (queue[i].endpoint == from) continue;  // never sent to itself
        looked++;
        uint64_t load = load_[queue[i].endpoint];
        if (!best_queue || load < best_load) {
          best_queue = &queue;
          best_at = i;
          best_depth = depth;
          best_load = load;
        }
      }
      if (looked >= kLook) break;
    }
    if (best_queue) {
      Holder& h = (*best_queue)[best_at];
      std::string to = h.endpoint;
      if (load_.size() >= options_.max_nodes) load_.clear();  // start counting afresh
      load_[to]++;
      if (++h.given >= options_.per_holder) {  // full: it can take nobody more
        best_queue->erase(best_queue->begin() + static_cast<std::ptrdiff_t>(best_at));
        c.holders--;
        if (best_queue->empty()) c.room.erase(best_depth);
      }
      AddHolder(c, from, best_depth + 1);
      return to;
    }
  }
  c.sending++;
  c.sent++;
  if (!from.empty()) AddHolder(c, from, 1);
  return "";
}

void SwarmTracker::Acquire(const std::string& chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  Chunk& c = Touch(chunk);
  c.sending++;
  c.sent++;
}

void SwarmTracker::Release(const std::string& chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = chunks_.find(chunk);
  if (it != chunks_.end() && it->second.sending > 0) it->second.sending--;
}

void SwarmTracker::Forget(const std::string& chunk, const std::string& holder) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = chunks_.find(chunk);
  if (it == chunks_.end()) return;
  Chunk& c = it->second;
  for (auto q = c.room.begin(); q != c.room.end();) {
    size_t before = q->second.size();
    std::erase_if(q->second, [&](const Holder& h) { return h.endpoint == holder; });
    c.holders -= before - q->second.size();
    q = q->second.empty() ? c.room.erase(q) : std::next(q);
  }
}

std::vector<std::string> SwarmTracker::Holders(const std::string& chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  auto it = chunks_.find(chunk);
  if (it != chunks_.end()) {
    for (const auto& [depth, queue] : it->second.room) {
      for (const auto& h : queue) out.push_back(h.endpoint);
    }
  }
  return out;
}

int SwarmTracker::Sending(const std::string& chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = chunks_.find(chunk);
  return it == chunks_.end() ? 0 : it->second.sending;
}

}  // namespace shoal::cluster

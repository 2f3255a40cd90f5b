#include "node/listing_cache.h"

namespace shoal::node {

size_t ListingCache::Cost(const std::string& key, const ListPage& page) {
  constexpr size_t kPerName = 96;  // an ObjectInfo or a string's own size, and the map's share
  size_t cost = key.size() + page.next_continuation.size() + 256;
  for (const auto& o : page.objects) cost += kPerName + o.key.size() + o.etag.size();
  for (const auto& p : page.prefixes) cost += kPerName + p.size();
  return cost;
}

std::optional<ListPage> ListingCache::Get(const std::string& key, const std::string& generation, Clock::duration ttl,
                                          Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.generation != generation || now - it->second.listed >= ttl) {
    DropLocked(it);
    return std::nullopt;
  }
  used_.splice(used_.begin(), used_, it->second.used);
  return it->second.page;
}

void ListingCache::Put(const std::string& key, const std::string& generation, const ListPage& page,
                       Clock::time_point listed) {
  const size_t cost = Cost(key, page);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) DropLocked(it);
  if (cost > max_bytes_) return;
  while (bytes_ + cost > max_bytes_ && !used_.empty()) DropLocked(entries_.find(used_.back()));
  used_.push_front(key);
  entries_.emplace(key, Entry{generation, listed, page, cost, used_.begin()});
  bytes_ += cost;
}

void ListingCache::DropLocked(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.cost;
  used_.erase(it->second.used);
  entries_.erase(it);
}

size_t ListingCache::bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

size_t ListingCache::pages() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace shoal::node

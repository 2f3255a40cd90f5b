#include "engine/hot_chunks.h"

namespace shoal::engine {

std::shared_ptr<const std::string> HotChunks::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  hits_++;
  return it->second->data;
}

void HotChunks::Put(const std::string& id, std::shared_ptr<const std::string> data) {
  if (!data || data->size() > capacity_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(id); it != index_.end()) {
    bytes_ -= it->second->data->size();
    lru_.erase(it->second);
    index_.erase(it);
  }
  bytes_ += data->size();
  lru_.push_front(Entry{id, std::move(data)});
  index_[id] = lru_.begin();
  while (bytes_ > capacity_) {
    bytes_ -= lru_.back().data->size();
    index_.erase(lru_.back().id);
    lru_.pop_back();
  }
}

uint64_t HotChunks::bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace shoal::engine

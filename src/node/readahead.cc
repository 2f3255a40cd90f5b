#include "node/readahead.h"

#include <algorithm>

namespace shoal::node {

ReadaheadWindows::Entry& ReadaheadWindows::Touch(const std::string& object) {
  auto it = windows_.find(object);
  if (it != windows_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second;
  }
  if (windows_.size() >= kObjects) {
    windows_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(object);
  return windows_.emplace(object, Entry{kFirst, lru_.begin()}).first->second;
}

int ReadaheadWindows::Window(const std::string& object, int most) {
  if (most <= 0) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  return std::min(Touch(object).window, most);
}

int ReadaheadWindows::CaughtUp(const std::string& object, int most) {
  if (most <= 0) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = Touch(object);
  e.window = std::min(std::max(e.window, 1) * 2, most);
  return e.window;
}

size_t ReadaheadWindows::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return windows_.size();
}

}  // namespace shoal::node

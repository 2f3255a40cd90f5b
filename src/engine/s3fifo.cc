#include "engine/s3fifo.h"

#include <algorithm>

namespace shoal::engine {

void S3Fifo::Insert(const std::string& id, uint64_t size, bool pinned) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    Touch(id);
    Pin(id, pinned || it->second.pinned);
    return;
  }
  Queue q = Queue::kSmall;
  auto ghost = ghost_index_.find(id);
  if (ghost != ghost_index_.end()) {  // evicted from small recently and wanted again
    q = Queue::kMain;
    ghost_.erase(ghost->second);
    ghost_index_.erase(ghost);
  }
  std::list<std::string>& list = q == Queue::kSmall ? small_ : main_;
  list.push_front(id);
  entries_.emplace(id, Entry{size, 0, pinned, q, list.begin()});
  (q == Queue::kSmall ? small_bytes_ : main_bytes_) += size;
  if (pinned) {
    pinned_bytes_ += size;
    pinned_count_++;
  }
}

void S3Fifo::Touch(const std::string& id) {
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second.freq < 3) it->second.freq++;
}

void S3Fifo::Pin(const std::string& id, bool pinned) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.pinned == pinned) return;
  it->second.pinned = pinned;
  if (pinned) {
    pinned_bytes_ += it->second.size;
    pinned_count_++;
  } else {
    pinned_bytes_ -= it->second.size;
    pinned_count_--;
  }
}

void S3Fifo::Erase(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  (e.queue == Queue::kSmall ? small_ : main_).erase(e.pos);
  (e.queue == Queue::kSmall ? small_bytes_ : main_bytes_) -= e.size;
  if (e.pinned) {
    pinned_bytes_ -= e.size;
    pinned_count_--;
  }
  entries_.erase(it);
}

void S3Fifo::Remember(const std::string& id) {
  ghost_.push_front(id);
  ghost_index_[id] = ghost_.begin();
  // As many ghosts as main holds entries (at least 64): enough to catch a quick re-read.
  size_t limit = std::max<size_t>(64, entries_.size());
  while (ghost_.size() > limit) {
    ghost_index_.erase(ghost_.back());
    ghost_.pop_back();
  }
}

bool S3Fifo::EvictFromSmall(std::vector<std::string>* out) {
  // Each entry at the tail either leaves (read at most once, into the ghost list), moves to
  // main (read again) or, if pinned, goes back to the front. Bounded by the queue's length.
  for (size_t n = small_.size(); n > 0; n--) {
    std::string id = small_.back();
    Entry& e = entries_.at(id);
    small_.pop_back();
    small_bytes_ -= e.size;
    if (e.freq > 0) {
      e.queue = Queue::kMain;
      e.freq = 0;
      main_.push_front(id);
      e.pos = main_.begin();
      main_bytes_ += e.size;
      continue;
    }
    if (e.pinned) {
      small_.push_front(id);
      e.pos = small_.begin();
      small_bytes_ += e.size;
      continue;
    }
    if (e.pinned) pinned_bytes_ -= e.size;
    entries_.erase(id);
    Remember(id);
    out->push_back(id);
    return true;
  }
  return false;
}

bool S3Fifo::EvictFromMain(std::vector<std::string>* out) {
  // Second chance: a read entry loses one count and goes back to the front.
  for (size_t n = main_.size() * 4; n > 0 && !main_.empty(); n--) {
    std::string id = main_.back();
    Entry& e = entries_.at(id);
    main_.pop_back();
    if (e.freq > 0 || e.pinned) {
      if (e.freq > 0) e.freq--;
      main_.push_front(id);
      e.pos = main_.begin();
      continue;
    }
    main_bytes_ -= e.size;
    entries_.erase(id);
    out->push_back(id);
    return true;
  }
  return false;
}

bool S3Fifo::EvictOne(std::vector<std::string>* out) {
  bool small_over = small_bytes_ > capacity_ / 10 || small_.size() > max_entries_ / 10 || main_.empty();
  if (small_over && EvictFromSmall(out)) return true;
  if (EvictFromMain(out)) return true;
  return !small_over && EvictFromSmall(out);
}

std::vector<std::string> S3Fifo::EvictFor(uint64_t incoming, uint64_t incoming_entries) {
  std::vector<std::string> out;
  while ((used() + incoming > capacity_ && used() > pinned_bytes_) ||
         (entries_.size() + incoming_entries > max_entries_ && entries_.size() > pinned_count_)) {
    if (!EvictOne(&out)) break;
  }
  return out;
}

}  // namespace shoal::engine

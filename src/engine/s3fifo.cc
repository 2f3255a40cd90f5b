#include "engine/s3fifo.h"

#include <algorithm>

namespace shoal::engine {

void S3Fifo::Enqueue(const std::string& id, Entry& e, Queue q) {
  std::list<std::string>& list = q == Queue::kSmall ? small_ : main_;
  list.push_front(id);
  e.queue = q;
  e.pos = list.begin();
  (q == Queue::kSmall ? small_bytes_ : main_bytes_) += e.size;
}

void S3Fifo::Dequeue(Entry& e) {
  if (e.queue == Queue::kPinned) {
    pinned_bytes_ -= e.size;
    pinned_count_--;
    return;
  }
  (e.queue == Queue::kSmall ? small_ : main_).erase(e.pos);
  (e.queue == Queue::kSmall ? small_bytes_ : main_bytes_) -= e.size;
}

void S3Fifo::Insert(const std::string& id, uint64_t size, bool pinned) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    Touch(id);
    if (pinned) Pin(id, true);
    return;
  }
  Queue q = Queue::kSmall;
  auto ghost = ghost_index_.find(id);
  if (ghost != ghost_index_.end()) {  // evicted from small recently and wanted again
    q = Queue::kMain;
    ghost_.erase(ghost->second);
    ghost_index_.erase(ghost);
  }
  Entry& e = entries_.emplace(id, Entry{size, 0, Queue::kPinned, {}}).first->second;
  if (pinned) {
    pinned_bytes_ += size;
    pinned_count_++;
  } else {
    Enqueue(id, e, q);
  }
}

void S3Fifo::Touch(const std::string& id) {
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second.freq < 3) it->second.freq++;
}

void S3Fifo::Pin(const std::string& id, bool pinned) {
  auto it = entries_.find(id);
  if (it == entries_.end() || (it->second.queue == Queue::kPinned) == pinned) return;
  Entry& e = it->second;
  if (pinned) {
    Dequeue(e);
    e.queue = Queue::kPinned;
    pinned_bytes_ += e.size;
    pinned_count_++;
  } else {
    Dequeue(e);
    Enqueue(id, e, Queue::kSmall);  // admitted as new: its reads so far (freq) still count
  }
}

void S3Fifo::Erase(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Dequeue(it->second);
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
  // The entry at the tail either moves to main (read again) or leaves (read at most once,
  // into the ghost list). Each step moves one entry on: bounded by the queue's length.
  while (!small_.empty()) {
    visited_++;
    std::string id = small_.back();
    Entry& e = entries_.at(id);
    Dequeue(e);
    if (e.freq > 0) {
      e.freq = 0;
      Enqueue(id, e, Queue::kMain);
      continue;
    }
    entries_.erase(id);
    Remember(id);
    out->push_back(id);
    return true;
  }
  return false;
}

bool S3Fifo::EvictFromMain(std::vector<std::string>* out) {
  // Second chance: a read entry loses one count and goes back to the front (at most 3 times).
  while (!main_.empty()) {
    visited_++;
    std::string id = main_.back();
    Entry& e = entries_.at(id);
    if (e.freq > 0) {
      e.freq--;
      main_.splice(main_.begin(), main_, e.pos);
      continue;
    }
    Dequeue(e);
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

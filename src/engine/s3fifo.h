#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

namespace shoal::engine {

// S3-FIFO eviction (Yang et al., SOSP'23) over entries with sizes, in bytes.
//
// Why S3-FIFO rather than LRU: AI reads are dominated by scans (a training epoch reads every
// shard once, often more data than the cache holds) mixed with a hot set (a model, the
// current checkpoint). Under LRU one scan flushes the hot set; S3-FIFO admits new entries to
// a small FIFO (10% of capacity) and only promotes those read again to the main FIFO, so a
// scan passes through the small queue and the hot set stays. A ghost list remembers recent
// evictions from the small queue so a re-read soon after goes straight to main.
//
// Besides bytes, the entries may be bounded by count (`max_entries`): each costs memory in the
// chunk store's index whatever its size, so many tiny chunks (small files) are evicted by count
// before their bytes come near the capacity.
//
// Pinned entries (chunks not yet uploaded) are never chosen as victims: they are kept out of
// both queues until unpinned (then admitted to the small queue, as new), so eviction looks at
// evictable entries only, however many are pinned (a node full of small writes waiting for
// their upload holds tens of thousands). Not thread-safe: the chunk store calls it under its
// lock.
class S3Fifo {
 public:
  explicit S3Fifo(uint64_t capacity, uint64_t max_entries = UINT64_MAX)
      : capacity_(capacity), max_entries_(max_entries) {}

  // Adds an entry (or, if present, counts an access). `pinned` entries are never evicted.
  void Insert(const std::string& id, uint64_t size, bool pinned);
  // Counts a read of `id` (no-op if absent).
  void Touch(const std::string& id);
  void Pin(const std::string& id, bool pinned);
  void Erase(const std::string& id);
  bool Contains(const std::string& id) const { return entries_.count(id) > 0; }

  // Entries to remove so that `incoming` more bytes, and `incoming_entries` more entries, fit
  // under capacity and max_entries, oldest first; they are already dropped from the policy.
  // Fewer (possibly none) when everything left is pinned.
  std::vector<std::string> EvictFor(uint64_t incoming, uint64_t incoming_entries = 1);

  uint64_t used() const { return small_bytes_ + main_bytes_ + pinned_bytes_; }
  uint64_t pinned_bytes() const { return pinned_bytes_; }
  uint64_t capacity() const { return capacity_; }
  size_t size() const { return entries_.size(); }
  // Entries eviction has looked at so far (each step of a queue's scan): its cost.
  uint64_t visited() const { return visited_; }

 private:
  enum class Queue : uint8_t { kSmall, kMain, kPinned };
  struct Entry {
    uint64_t size;
    uint8_t freq;  // reads since insertion or last second chance, capped at 3
    Queue queue;   // kPinned: in neither list
    std::list<std::string>::iterator pos;  // in small_ or main_, unless pinned
  };
  // Into the front of `q`'s list (small or main), counted in its bytes.
  void Enqueue(const std::string& id, Entry& e, Queue q);
  // Out of its list, or out of the pinned count; the entry itself stays.
  void Dequeue(Entry& e);

  // Evicts one entry (or moves one along); false when no progress is possible.
  bool EvictOne(std::vector<std::string>* out);
  bool EvictFromSmall(std::vector<std::string>* out);
  bool EvictFromMain(std::vector<std::string>* out);
  void Remember(const std::string& id);  // the ghost list

  uint64_t capacity_;
  uint64_t max_entries_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> small_;  // front = newest
  std::list<std::string> main_;
  uint64_t small_bytes_ = 0, main_bytes_ = 0, pinned_bytes_ = 0;
  size_t pinned_count_ = 0;
  uint64_t visited_ = 0;
  std::list<std::string> ghost_;
  std::unordered_map<std::string, std::list<std::string>::iterator> ghost_index_;
};

}  // namespace shoal::engine

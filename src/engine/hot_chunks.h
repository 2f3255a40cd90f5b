#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace shoal::engine {

// Whole chunks kept in memory after a read from disk (checksum verified) or a fetch, so small
// reads of a warm object do not read and verify a whole chunk file each time (a 4 KiB read
// of an 8 MiB chunk from disk costs the 8 MiB). Least recently used out, under `capacity`
// bytes; 0 keeps nothing. A chunk's id names one version of its bytes, so an entry is never
// stale: nothing is invalidated, only evicted. Thread-safe.
class HotChunks {
 public:
  explicit HotChunks(uint64_t capacity) : capacity_(capacity) {}

  // The chunk with `id`, or null.
  std::shared_ptr<const std::string> Get(const std::string& id);
  // Keeps `data` as chunk `id` (a chunk larger than the capacity is not kept).
  void Put(const std::string& id, std::shared_ptr<const std::string> data);

  uint64_t bytes();
  uint64_t hits() const { return hits_; }

 private:
  struct Entry {
    std::string id;
    std::shared_ptr<const std::string> data;
  };
  const uint64_t capacity_;
  std::mutex mu_;
  std::list<Entry> lru_;  // most recent first; guarded by mu_
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;  // guarded by mu_
  uint64_t bytes_ = 0;                                                  // guarded by mu_
  std::atomic<uint64_t> hits_{0};
};

}  // namespace shoal::engine

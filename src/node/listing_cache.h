#pragma once

// Pages of the object store's listings, kept for the listings the node answers
// (ListWithPending: GET /v1/list, the front door's lists, the mount's readdir through them).
// A page is used again while both hold:
//   - it is younger than the TTL the caller gives (--metadata-ttl; 0 with --validate): what
//     bounds how long a change made to the store around the cluster goes unseen;
//   - the cluster's generation is the one it was listed under: every member's
//     WriteBack::PendingUploads generation, which moves when a write through that member
//     reaches the store (and leaves its pending list, under the same lock) or a delete through
//     it is done. Whoever lists merges in the pending writes read with those generations, so a
//     write through the cluster is either among them or has moved a generation, and a page
//     listed before it is not used.
// The caller reads the generation before it lists the store, and does not cache at all when
// a member did not answer (its generation is unknown).
//
// Bounded: at most the given bytes of pages (counted as their names' and ETags' sizes plus a
// fixed cost per entry), the least recently used dropped first; a page larger than the bound
// is not kept. Thread-safe: one mutex, nothing called under it.

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "store/object_store.h"

namespace shoal::node {

class ListingCache {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxBytes = 16u << 20;
  explicit ListingCache(size_t max_bytes = kMaxBytes) : max_bytes_(max_bytes) {}

  // The page listed for `key` under `generation`, no older than `ttl` at `now`.
  std::optional<ListPage> Get(const std::string& key, const std::string& generation, Clock::duration ttl,
                              Clock::time_point now = Clock::now());
  // Keeps `page`, listed for `key` under `generation` at `listed` (before the store was asked).
  void Put(const std::string& key, const std::string& generation, const ListPage& page,
           Clock::time_point listed = Clock::now());
  size_t bytes();
  size_t pages();

  // What a page costs against the bound.
  static size_t Cost(const std::string& key, const ListPage& page);

 private:
  struct Entry {
    std::string generation;
    Clock::time_point listed;
    ListPage page;
    size_t cost = 0;
    std::list<std::string>::iterator used;  // in used_
  };
  void DropLocked(std::unordered_map<std::string, Entry>::iterator it);  // mu_ held

  const size_t max_bytes_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::list<std::string> used_;                      // keys, most recently used first; guarded by mu_
  size_t bytes_ = 0;                                 // sum of entries' cost; guarded by mu_
};

}  // namespace shoal::node

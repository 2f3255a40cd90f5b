#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "store/object_store.h"

namespace shoal::client {

struct CacheConfig {
  std::string endpoint;  // HOST:PORT of a shoald
  std::string token;     // shared secret; empty for a node without one

  // From --cache / SHOAL_CACHE and --token-file / SHOAL_TOKEN_FILE (the flags win).
  // An empty endpoint means "no cache".
  static Result<CacheConfig> Resolve(const std::string& cache_flag, const std::string& token_file_flag);
};

// An ObjectStore for the objects of `bucket` (scheme://bucket) read through a shoald:
// Get and Head go to the node, which serves them from its chunk cache. Writes, listing and
// deletes are not served by the node yet and fail with kInvalidArgument saying so.
std::shared_ptr<ObjectStore> NewCacheStore(const CacheConfig& config, const ObjectUrl& bucket);

// The node's counters and gauges from its /metrics ("shoal_chunk_hits_total" -> 12).
Result<std::map<std::string, uint64_t>> FetchMetrics(const CacheConfig& config);

}  // namespace shoal::client

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "engine/chunk_store.h"
#include "store/object_store.h"

namespace shoal::node {

struct NodeOptions {
  std::string listen = "127.0.0.1:7070";  // HOST:PORT; port 0 picks a free one
  std::string data_dir;
  uint64_t capacity = 20ull << 30;
  uint64_t chunk_size = 8ull << 20;
  std::string node_id;
  std::string token;                       // empty: unauthenticated (said at start)
  std::chrono::seconds metadata_ttl{60};
  bool validate = false;                   // check the ETag with the store on every open
  int readahead = 4;                       // chunks fetched ahead of a sequential reader
  bool sync = true;                        // fsync chunk files
};

// Counters, exported at /metrics.
struct NodeMetrics {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> chunk_hits{0};
  std::atomic<uint64_t> chunk_misses{0};
  std::atomic<uint64_t> coalesced_waits{0};  // readers that waited for another's fetch
  std::atomic<uint64_t> store_get_requests{0};
  std::atomic<uint64_t> store_get_bytes{0};
  std::atomic<uint64_t> store_head_requests{0};
  std::atomic<uint64_t> bytes_served{0};
  std::atomic<uint64_t> readahead_chunks{0};
  std::atomic<uint64_t> errors_not_found{0};
  std::atomic<uint64_t> errors_unavailable{0};
  std::atomic<uint64_t> errors_other{0};
};

// The cache node as a library: serves ranges of objects from the chunk store, filling misses
// from the object store with request coalescing (N concurrent readers of one missing chunk
// cause one GET). Thread-safe.
class Node {
 public:
  static Result<std::unique_ptr<Node>> Create(const NodeOptions& options);
  ~Node();

  // Size and ETag of `url`, from the metadata cache (fresh for metadata_ttl) or the store.
  Result<ObjectInfo> Stat(const std::string& url);
  // Forgets the cached size and ETag of `url` (it changed in the store).
  void Invalidate(const std::string& url);
  // Streams bytes [offset, offset + length) of `url` (as of `info`) to `sink`, chunk by chunk.
  // kPreconditionFailed when the store no longer has that version.
  Status Read(const std::string& url, const ObjectInfo& info, uint64_t offset, uint64_t length,
              const ByteSink& sink);

  NodeMetrics& metrics() { return metrics_; }
  engine::ChunkStore& chunks() { return *chunks_; }
  const NodeOptions& options() const { return options_; }
  // Prometheus text exposition of the metrics.
  std::string MetricsText();

 private:
  explicit Node(NodeOptions options) : options_(std::move(options)) {}
  Result<std::shared_ptr<ObjectStore>> StoreFor(const ObjectUrl& url);
  // One chunk's bytes: from disk, or fetched once however many callers ask at the same time.
  Result<std::shared_ptr<const std::string>> Chunk(const std::string& url, const ObjectInfo& info,
                                                   uint64_t index);
  Result<std::shared_ptr<const std::string>> Fetch(const std::string& url, const ObjectInfo& info,
                                                   uint64_t index);
  void ReadAhead(const std::string& url, const ObjectInfo& info, uint64_t index);

  NodeOptions options_;
  NodeMetrics metrics_;
  std::unique_ptr<engine::ChunkStore> chunks_;

  std::mutex stores_mu_;
  std::map<std::string, std::shared_ptr<ObjectStore>> stores_;  // guarded by stores_mu_

  struct Meta {
    ObjectInfo info;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex meta_mu_;
  std::unordered_map<std::string, Meta> meta_;  // guarded by meta_mu_

  using ChunkFuture = std::shared_future<Result<std::shared_ptr<const std::string>>>;
  std::mutex inflight_mu_;
  std::unordered_map<std::string, ChunkFuture> inflight_;  // chunk id -> fetch; guarded

  std::mutex readahead_mu_;
  int readahead_running_ = 0;  // guarded by readahead_mu_
  std::condition_variable readahead_cv_;
};

}  // namespace shoal::node

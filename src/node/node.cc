#include "node/node.h"

#include <algorithm>
#include <sstream>
#include <thread>

#include "common/strings.h"

namespace shoal::node {

Result<std::unique_ptr<Node>> Node::Create(const NodeOptions& options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("--data-dir is required");
  if (options.chunk_size < (1 << 20) || options.chunk_size > (256ull << 20)) {
    return Status::InvalidArgument("--chunk-size must be between 1MiB and 256MiB");
  }
  if (options.capacity < options.chunk_size * 4) {
    return Status::InvalidArgument("--capacity must hold at least 4 chunks (" +
                                   FormatBytes(options.chunk_size * 4) + ")");
  }
  std::unique_ptr<Node> node(new Node(options));
  SHOAL_ASSIGN_OR_RETURN(node->chunks_,
                         engine::ChunkStore::Open({options.data_dir, options.capacity, options.sync}));
  return node;
}

Node::~Node() {
  std::unique_lock<std::mutex> lock(readahead_mu_);
  readahead_cv_.wait(lock, [this] { return readahead_running_ == 0; });
}

Result<std::shared_ptr<ObjectStore>> Node::StoreFor(const ObjectUrl& url) {
  std::string id = url.scheme + "://" + url.bucket;
  std::lock_guard<std::mutex> lock(stores_mu_);
  auto it = stores_.find(id);
  if (it != stores_.end()) return it->second;
  SHOAL_ASSIGN_OR_RETURN(auto store, OpenObjectStore(url));
  stores_[id] = store;
  return store;
}

Result<ObjectInfo> Node::Stat(const std::string& url) {
  auto now = std::chrono::steady_clock::now();
  if (!options_.validate) {
    std::lock_guard<std::mutex> lock(meta_mu_);
    auto it = meta_.find(url);
    if (it != meta_.end() && now - it->second.fetched < options_.metadata_ttl) return it->second.info;
  }
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  if (parsed.key.empty()) return Status::InvalidArgument(url + " names no object");
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  metrics_.store_head_requests++;
  SHOAL_ASSIGN_OR_RETURN(ObjectInfo info, store->Head(parsed.key));
  std::lock_guard<std::mutex> lock(meta_mu_);
  meta_[url] = Meta{info, now};
  return info;
}

void Node::Invalidate(const std::string& url) {
  std::lock_guard<std::mutex> lock(meta_mu_);
  meta_.erase(url);
}

Result<std::shared_ptr<const std::string>> Node::Fetch(const std::string& url,
                                                       const ObjectInfo& info, uint64_t index) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  uint64_t offset = index * options_.chunk_size;
  uint64_t length = std::min(options_.chunk_size, info.size - offset);
  auto data = std::make_shared<std::string>();
  data->reserve(length);
  ReadOptions ro;
  ro.offset = offset;
  ro.length = length;
  ro.if_match = info.etag;
  metrics_.store_get_requests++;
  SHOAL_RETURN_IF_ERROR(store->Get(parsed.key, ro, [&](const char* d, size_t n) {
    data->append(d, n);
    return Status::Ok();
  }));
  metrics_.store_get_bytes += data->size();
  if (data->size() != length) {
    return Status::Corruption(url + ": chunk " + std::to_string(index) + " came back with " +
                              std::to_string(data->size()) + " bytes, not " + std::to_string(length));
  }
  // Cache it; a full cache (pinned data) only means this chunk is not kept.
  chunks_->Put(engine::ChunkKey{url, info.etag, index}, *data, false).IgnoreError();
  return std::shared_ptr<const std::string>(std::move(data));
}

Result<std::shared_ptr<const std::string>> Node::Chunk(const std::string& url,
                                                       const ObjectInfo& info, uint64_t index) {
  engine::ChunkKey key{url, info.etag, index};
  auto cached = chunks_->Get(key);
  if (cached.ok()) {
    metrics_.chunk_hits++;
    return std::make_shared<const std::string>(std::move(cached).value());
  }
  // kNotFound, or kCorruption (already dropped): fetch it again.
  metrics_.chunk_misses++;
  std::string id = key.Id();
  std::promise<Result<std::shared_ptr<const std::string>>> promise;
  ChunkFuture future;
  bool leader = false;
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    auto it = inflight_.find(id);
    if (it != inflight_.end()) {
      future = it->second;
    } else {
      future = promise.get_future().share();
      inflight_[id] = future;
      leader = true;
    }
  }
  if (!leader) {
    metrics_.coalesced_waits++;
    return future.get();
  }
  auto result = Fetch(url, info, index);
  promise.set_value(result);
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    inflight_.erase(id);
  }
  return result;
}

void Node::ReadAhead(const std::string& url, const ObjectInfo& info, uint64_t index) {
  uint64_t chunks = (info.size + options_.chunk_size - 1) / options_.chunk_size;
  for (int k = 1; k <= options_.readahead; k++) {
    uint64_t next = index + k;
    if (next >= chunks) return;
    engine::ChunkKey key{url, info.etag, next};
    if (chunks_->Contains(key)) continue;
    {
      std::lock_guard<std::mutex> lock(inflight_mu_);
      if (inflight_.count(key.Id())) continue;
    }
    {
      std::lock_guard<std::mutex> lock(readahead_mu_);
      if (readahead_running_ >= options_.readahead) return;  // bounded: never queue without limit
      readahead_running_++;
    }
    metrics_.readahead_chunks++;
    std::thread([this, url, info, next] {
      Chunk(url, info, next).status().IgnoreError();
      std::lock_guard<std::mutex> lock(readahead_mu_);
      readahead_running_--;
      readahead_cv_.notify_all();
    }).detach();
  }
}

Status Node::Read(const std::string& url, const ObjectInfo& info, uint64_t offset, uint64_t length,
                  const ByteSink& sink) {
  if (offset > info.size || length > info.size - offset) {
    return Status::InvalidArgument("range " + std::to_string(offset) + "+" + std::to_string(length) +
                                   " is outside " + url + " (" + std::to_string(info.size) + " bytes)");
  }
  uint64_t end = offset + length;
  uint64_t pos = offset;
  while (pos < end) {
    uint64_t index = pos / options_.chunk_size;
    ReadAhead(url, info, index);
    SHOAL_ASSIGN_OR_RETURN(auto data, Chunk(url, info, index));
    uint64_t in_chunk = pos - index * options_.chunk_size;
    uint64_t n = std::min<uint64_t>(data->size() - in_chunk, end - pos);
    SHOAL_RETURN_IF_ERROR(sink(data->data() + in_chunk, n));
    metrics_.bytes_served += n;
    pos += n;
  }
  return Status::Ok();
}

std::string Node::MetricsText() {
  std::ostringstream out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out << "# HELP shoal_" << name << " " << help << "\n# TYPE shoal_" << name << " counter\nshoal_"
        << name << " " << v << "\n";
  };
  auto gauge = [&](const char* name, const char* help, uint64_t v) {
    out << "# HELP shoal_" << name << " " << help << "\n# TYPE shoal_" << name << " gauge\nshoal_"
        << name << " " << v << "\n";
  };
  counter("requests_total", "Client requests received.", metrics_.requests);
  counter("chunk_hits_total", "Chunk reads served from local disk.", metrics_.chunk_hits);
  counter("chunk_misses_total", "Chunk reads not on local disk.", metrics_.chunk_misses);
  counter("coalesced_waits_total", "Readers that waited for another reader's fetch.",
          metrics_.coalesced_waits);
  counter("store_get_requests_total", "Chunk GETs sent to the object store.", metrics_.store_get_requests);
  counter("store_get_bytes_total", "Bytes read from the object store.", metrics_.store_get_bytes);
  counter("store_head_requests_total", "HEADs sent to the object store.", metrics_.store_head_requests);
  counter("bytes_served_total", "Object bytes sent to clients.", metrics_.bytes_served);
  counter("readahead_chunks_total", "Chunks fetched ahead of sequential readers.", metrics_.readahead_chunks);
  counter("errors_not_found_total", "Requests for objects that do not exist.", metrics_.errors_not_found);
  counter("errors_unavailable_total", "Requests failed by an unavailable store.", metrics_.errors_unavailable);
  counter("errors_other_total", "Requests failed otherwise.", metrics_.errors_other);
  auto s = chunks_->stats();
  gauge("cache_bytes", "Chunk bytes on local disk.", s.bytes);
  gauge("cache_chunks", "Chunks on local disk.", s.chunks);
  gauge("cache_pinned_bytes", "Chunk bytes not yet uploaded (not evictable).", s.pinned_bytes);
  counter("cache_evictions_total", "Chunks evicted.", s.evictions);
  counter("cache_corruptions_total", "Chunks that failed their checksum.", s.corruptions);
  return out.str();
}

}  // namespace shoal::node

#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <utility>
#include <vector>
#include <memory>
#include <string>

#include "client/entry.h"
#include "common/status.h"
#include "store/object_store.h"
#include "store/transfer.h"

namespace shoal::client {

struct CacheConfig {
  std::string endpoint;  // HOST:PORT of a shoald, or unix:PATH (the first of --cache's list)
  std::string token;     // shared secret; empty for a node without one
  // Where data requests go when `endpoint` cannot be reached (see EntryNodes); made by Resolve
  // and shared by the copies of this config. Null: `endpoint` alone. Requests for one node
  // (drain, metrics, readiness, the cluster's membership) go to `endpoint` whatever this says.
  std::shared_ptr<EntryNodes> entry;

  // The node a data request goes to now.
  std::string Current() const { return entry ? entry->Current() : endpoint; }
  // "A" or "A, B or C": the nodes a data request may go to, for messages.
  std::string Describe() const;

  // From --cache / SHOAL_CACHE and --token-file / SHOAL_TOKEN_FILE (the flags win).
  // An empty endpoint means "no cache". --cache may list several nodes, comma-separated
  // (A,B: A preferred, B when A cannot be reached). An https://HOST:PORT node turns on TLS to
  // every node for this process (proto::SetNodeTls), checked against --tls-ca / SHOAL_TLS_CA
  // when given.
  static Result<CacheConfig> Resolve(const std::string& cache_flag, const std::string& token_file_flag,
                                     const std::string& tls_ca_flag = "");
};

// An ObjectStore for the objects of `bucket` (scheme://bucket) through a shoald, which needs
// no store credentials here: Get and Head (with the object's metadata) go to the node, which serves them from its chunk
// cache; List is the node's (/v1/list: the store's listing with the node's writes not yet
// uploaded merged in); Delete cancels the node's pending writes of the key, then deletes it.
// Writes through this interface (PutObject, multipart) and CreateBucket fail with
// kInvalidArgument: write with WriteThroughCache (client::Writer), create buckets directly.
// Each request goes to config.Current(); one whose connection is refused goes on to the next
// node (CacheConfig::entry), resuming a read from the bytes it has; the view fetched from a TCP
// node teaches the entry the cluster's members.
std::shared_ptr<ObjectStore> NewCacheStore(const CacheConfig& config, const ObjectUrl& bucket);

inline constexpr uint64_t kUnknownSize = UINT64_MAX;
// Writes `url` through the node (write-back): streams `size` bytes (kUnknownSize: all of a
// pipe, sent chunked) from `source` in one PUT; returns once the node has them on disk and
// journaled (state "local"). One attempt: the body is a stream (sent to the next node of
// config.entry only when a connection could not be made, before a byte was read).
// kUnavailable when no node can be reached; kResourceExhausted when its disk is full.
Result<ObjectInfo> WriteThroughCache(const CacheConfig& config, const std::string& url,
                                     ByteSource& source, uint64_t size,
                                     std::atomic<uint64_t>* progress = nullptr);

// Runs `send` (one write from its source's start) and, while it is refused as unavailable
// (nothing acknowledged: its node, or the node it copies to, restarting) and `rewind` puts the
// source back at its start, again: up to 5 times over about 6 s. The last result.
Result<ObjectInfo> WriteWithResends(const std::function<Result<ObjectInfo>()>& send,
                                    const std::function<bool()>& rewind);

struct PendingWrites {
  uint64_t objects = 0;
  uint64_t bytes = 0;
  uint64_t uploaded = 0;      // of `bytes`, already in the store (parts not yet committed)
  std::string last_error;     // why an upload is being retried, if one is
  std::vector<ObjectInfo> list;  // each pending object: key is its URL, and its size
  // Not yet durable in the whole cluster: these, the copies of other nodes' writes held on
  // any member, and the other members' own writes (a node on its own: `objects`).
  uint64_t cluster_objects = 0;
  std::vector<std::string> unreachable;  // members the node could not ask (not counted)
};
// What the node still has to upload under `prefix` (its URL prefix; "" for everything), and
// what the cluster has.
Result<PendingWrites> FetchPending(const CacheConfig& config, const std::string& prefix);

// "3 objects, 1.0 MiB of 24.0 MiB uploaded; retrying after: ..."
std::string DescribePending(const PendingWrites& p);
// Polls the node until nothing under `prefix` is pending anywhere in the cluster
// (cluster_objects 0: a write acknowledged through a member that died counts while a copy of
// it waits on another), or with `whole_cluster` false on the node alone (`objects` 0: what
// `shoal commit` waits for before the node checks the others itself); `timeout_s` 0: no
// limit, past it kUnavailable saying what is left. Calls `each_poll` with what is left at
// every poll.
Status WaitDurable(const CacheConfig& config, const std::string& prefix, int timeout_s,
                   const std::function<void(const PendingWrites&)>& each_poll = nullptr, bool whole_cluster = true);

struct CachedObject {
  ObjectInfo info;
  std::string state;  // "local" (only on the node's disk so far) or "durable"
  std::string written_as;  // durable after a write through the node: the ETag it had while local
};
// Size, ETag and durability of `url` as the node serves it. `to_read`: the object is read from
// its start next (proto::kFirstChunkHeader: a node that must ask the store brings the first
// chunk with the answer).
Result<CachedObject> StatThroughCache(const CacheConfig& config, const std::string& url, bool to_read = false);

// Deletes `url` through the node: its writes there not yet uploaded are cancelled (they never
// reach the store), then the object is deleted from the store.
Status DeleteThroughCache(const CacheConfig& config, const std::string& url);

// Has the node write PREFIX/_SHOAL_COMMITTED (see store/commit.h and Node::Commit): straight
// to the store when everything under the prefix is there, else written back like the writes it
// names. With `shards` more than 0, the marker names exactly the shards `shard_name` ({rank} in
// it) of ranks 0 .. shards-1, and kNotFound names those missing (no marker). The marker.
// What write `version` (a local version, "local-...") of `url` became, as the cluster knows
// (GET /v1/version): the store's ETag; kUnavailable while it is not uploaded; kNotFound when
// the cluster does not know it. Any other version is returned as it is.
Result<std::string> CommitThroughCache(const CacheConfig& config, const std::string& prefix, uint32_t shards = 0,
                                       const std::string& shard_name = "");
Result<std::string> ResolveThroughCache(const CacheConfig& config, const std::string& url, const std::string& version);

struct ClusterMember {
  std::string id, endpoint, domain;
  uint32_t weight = 0;
  uint64_t slots = 0;
};
struct ClusterInfo {
  std::string self;      // the node asked
  uint64_t epoch = 0;    // 0: not in a cluster
  uint64_t slots = 0;
  uint64_t chunk_size = 0;
  std::vector<ClusterMember> members;
};
// The membership as the node sees it (GET /v1/cluster).
Result<ClusterInfo> FetchCluster(const CacheConfig& config);

struct WarmupProgress {
  std::atomic<uint64_t>* bytes;      // adds the chunk bytes now cached on their owners (a progress bar's count)
  std::atomic<uint64_t> fetched{0};  // of them, fetched from the store (or a previous owner) now
  std::atomic<uint64_t> chunks{0};
  explicit WarmupProgress(std::atomic<uint64_t>* b) : bytes(b) {}
};
// Has every chunk of `objects` (URL and version, e.g. from a listing) fetched into the cache
// by its owner: every owner at once, `per_node` chunks in flight on each. Without a cluster,
// the node does all of it. `broadcast`: into every member's cache (each gets the chunks
// through their owners, who pass them on as a tree: fan-in). Stops at the first failure.
Status WarmUp(const CacheConfig& config, const std::vector<std::pair<std::string, ObjectInfo>>& objects,
              int per_node, WarmupProgress* progress, bool broadcast = false);

struct DrainProgress {
  std::string state;  // "draining", "done", "failed"
  uint64_t writes = 0, write_bytes = 0, copies = 0, left = 0, epoch = 0;
  std::string error;
};
// Starts (`start`) or follows the drain of the node (POST or GET /v1/drain).
Result<DrainProgress> Drain(const CacheConfig& config, bool start);

// The node's counters and gauges from its /metrics ("shoal_chunk_hits_total" -> 12).
Result<std::map<std::string, double>> FetchMetrics(const CacheConfig& config);
// GET /readyz: ok when the node is ready, else its answer (kUnavailable: why it is not).
Status FetchReadiness(const CacheConfig& config);

}  // namespace shoal::client

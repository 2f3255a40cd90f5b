#pragma once

#include <memory>
#include <string>

#include "cluster/swarm.h"
#include "common/file.h"
#include "common/rate_limiter.h"
#include "common/status.h"
#include "common/worker_pool.h"
#include "engine/chunk_store.h"
#include "engine/journal.h"
#include "node/directory.h"
#include "node/listing_cache.h"
#include "node/metrics.h"
#include "node/objects.h"
#include "node/options.h"
#include "node/read_path.h"
#include "node/replicas.h"
#include "node/routing.h"
#include "node/write_back.h"

namespace shoal::node {

// The cache node as a library: one data directory (locked: one node per directory) with its
// chunk store and journal, and the parts that do the node's work, each with one job:
//   objects()   ObjectCatalog   stores, object metadata, versions of written objects
//   cluster()   ClusterRouting  the view, joining and leaving, calls to other nodes
//   directory() WriteDirectory  writes not yet in the store, cluster-wide: what readers get
//   reads()     ReadPath        chunks from memory, disk, peers or the store, fetched once
//   writes()    WriteBack       writes acknowledged on disk (and copies), uploaded later
//   replicas()  Replicas        copies held for other nodes; drain
//   listings()  ListingCache    pages of the store's listings, while the cluster changed nothing
// and what the server needs beside them: the serve pool its blocking handlers run on, the
// egress limit, and the fan-in tracker. Each part's header gives its lock discipline; a part
// calls only parts listed above it (replicas → writes → directory → cluster, objects; reads →
// directory, cluster, objects), never back up.
//
// Thread-safety: every method may be called from any thread once Create returned. The
// destructor stops the parts in reverse order of that list, the serve pool first (handlers
// running finish while everything they use exists).
class Node {
 public:
  static Result<std::unique_ptr<Node>> Create(const NodeOptions& options);
  ~Node();

  const NodeOptions& options() const { return options_; }
  // This node's id in the cluster.
  const std::string& id() const { return options_.node_id; }
  // Names this data directory (random, made once): a node that answers "unknown" for a write
  // under the incarnation it had when it sent the copy never acknowledged that write (or
  // handed it off); under another one, it lost its disk.
  const std::string& incarnation() const { return incarnation_; }

  ObjectCatalog& objects() { return *objects_; }
  ClusterRouting& cluster() { return *cluster_; }
  WriteDirectory& directory() { return *directory_; }
  ReadPath& reads() { return *reads_; }
  WriteBack& writes() { return *writes_; }
  Replicas& replicas() { return *replicas_; }
  engine::ChunkStore& chunks() { return *chunks_; }
  ListingCache& listings() { return listings_; }
  NodeMetrics& metrics() { return metrics_; }
  // Blocking work of requests (the server runs handlers here).
  WorkerPool& serve_pool() { return *serve_pool_; }
  // Blocking work of the requests other nodes wait on (their copies' chunks and commits, the
  // state of a write, a lookup of this node as an object's home): local disk, journal and the
  // object store only, never a wait on another node. Apart from the serve pool, whose tasks
  // may wait on peers (a writer's copies, a reader's lookup at the home), so that nodes whose
  // serve threads all wait on each other still answer each other.
  WorkerPool& peer_pool() { return *peer_pool_; }
  RateLimiter& egress() { return egress_; }
  cluster::SwarmTracker& swarm() { return swarm_; }

  // Writes PREFIX/_SHOAL_COMMITTED (store/commit.h), naming every object under the prefix
  // (with `shards`, exactly those: kNotFound naming the missing ones, and no marker). When
  // everything under the prefix is in the store, the marker goes straight there. Otherwise it
  // names the writes acknowledged through any member by their local versions, and is itself
  // written back (acknowledged as they are, on --replicas nodes), so every member reads it at
  // once; it is uploaded only after every object it names, with the store's ETags in place of
  // the local versions (WriteBack::UploadBytes). kUnavailable when a member cannot be asked
  // what it holds under the prefix. Returns the marker's JSON.
  Result<std::string> Commit(const std::string& prefix_url, const std::vector<std::string>* shards = nullptr);
  // Writes under `prefix` not yet durable anywhere in the cluster: this node's own, the
  // copies it holds of other nodes' writes, and every other member's own and copies (its
  // /v1/pending). A member that cannot be asked is named in *unreachable and not counted;
  // with --replicas 2 or more its acknowledged writes are counted as copies on the others.
  uint64_t PendingInCluster(const std::string& prefix, std::vector<std::string>* unreachable);
  // Prometheus text exposition of the metrics.
  std::string MetricsText();

 private:
  explicit Node(NodeOptions options)
      : options_(std::move(options)),
        egress_(options_.egress_limit),
        swarm_(cluster::SwarmTracker::Options{options_.fan_in_direct, options_.fan_in_fanout}) {}
  // Reads the journal at start: own writes staged again, copies watched, aliases of durable
  // writes kept.
  void Replay();
  // Objects under `prefix` that member `peer` has not made durable: its own and its copies.
  Result<uint64_t> PendingAt(const cluster::Peer& peer, const std::string& prefix);

  NodeOptions options_;
  // Declared first of what holds the data directory, so it is released last.
  std::unique_ptr<FileLock> data_dir_lock_;
  std::string incarnation_;
  NodeMetrics metrics_;
  RateLimiter egress_;
  cluster::SwarmTracker swarm_;
  ListingCache listings_;
  std::unique_ptr<engine::ChunkStore> chunks_;
  std::unique_ptr<engine::Journal> journal_;
  // The parts, in the order they are built; destroyed in reverse.
  std::unique_ptr<ObjectCatalog> objects_;
  std::unique_ptr<ClusterRouting> cluster_;
  std::unique_ptr<WriteDirectory> directory_;
  std::unique_ptr<WriteBack> writes_;
  std::unique_ptr<Replicas> replicas_;
  std::unique_ptr<ReadPath> reads_;
  // Declared last, so destroyed first: its threads end (running what is queued) while
  // everything their handlers use still exists.
  std::unique_ptr<WorkerPool> serve_pool_;
  std::unique_ptr<WorkerPool> peer_pool_;  // destroyed before the serve pool (declared after it)
};

}  // namespace shoal::node

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <deque>
#include <future>
#include <thread>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cluster/etcd.h"
#include "cluster/view.h"
#include "common/file.h"
#include "common/rate_limiter.h"
#include "common/status.h"
#include "common/worker_pool.h"
#include "engine/chunk_store.h"
#include "engine/hot_chunks.h"
#include "engine/journal.h"
#include "node/metrics.h"
#include "cluster/swarm.h"
#include "node/uploader.h"
#include "net/http_client.h"
#include "net/node_protocol.h"
#include "store/object_store.h"

namespace shoal::node {

// How a read may fill a chunk it does not hold.
enum class ReadMode {
  kRoute,      // a client's request: ask the chunk's owner (one hop), else the object store
  kForwarded,  // sent by a peer or a client that routed it already: no further hop
  kCacheOnly,  // answer only from local disk (a new owner asking the previous one)
  kHeld,       // fan-in: from local disk, or streamed as this node's own fetch of it arrives; never fetched for the asker
};

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
  // Write-back: bytes written here and not yet durable at most (0: half the capacity); a
  // writer at the cap waits for uploads (up to writer_timeout) rather than failing.
  uint64_t staged_cap = 0;
  std::chrono::milliseconds writer_timeout{std::chrono::minutes(10)};
  int upload_concurrency = 8;              // part uploads in flight at most
  std::chrono::milliseconds upload_deadline{std::chrono::minutes(15)};
  // The cluster (static membership): every member, this node among them (node_id). Empty: a
  // node on its own.
  std::vector<cluster::Peer> peers;
  // Or a membership kept in etcd (endpoints "http://h:p,..."): this node registers under
  // etcd_prefix + "members/" + node_id with a lease of down_grace, and follows every change.
  std::string etcd;
  std::string etcd_prefix = "/shoal/";
  uint32_t weight = 100;     // share of chunks (etcd membership; static: in --peers)
  std::string domain;        // failure domain (default: node_id)
  uint64_t egress_limit = 0;               // object bytes per second sent, all clients (0: no limit)
  // Replicated write-back: a write is acknowledged once it is on this many nodes (itself and
  // the next-ranked nodes for the object); a copy is uploaded by its holder only when the node
  // that took the write has been unreachable for down_grace (or lost the write).
  int replicas = 2;
  std::chrono::milliseconds down_grace{std::chrono::seconds(30)};
  // Follow the cluster (peers or etcd) without joining it: own no chunks, hold no copies; what
  // this node reads it gets through the members and passes on to other readers (fan-in).
  bool reader = false;
  // Fan-in (cluster::SwarmTracker): copies of one chunk this node sends to other nodes per burst
  // of askers before it sends the rest to nodes that hold it (0: never), and askers sent to one
  // holder per chunk.
  int fan_in_direct = 4;
  int fan_in_fanout = 2;
  // Requests served at once (idle keep-alive connections do not count); past it a request is
  // answered 503 Busy at once.
  int max_connections = 1024;
  // Threads for blocking work of requests (disk reads, writes and fsyncs, handlers:
  // `serve_threads`) and chunk fetches from peers and the store (`fetch_threads`: how many
  // chunks are fetched at once; writers' chunk copies to their replicas run on a second pool
  // of as many). 0: from the core count. The server's event loop has its own.
  int serve_threads = 0;
  int fetch_threads = 0;
  // Whole chunks kept in memory after a read or a fetch (engine::HotChunks), so small reads of
  // a warm object cost no chunk-file read each; 0: none.
  uint64_t memory_cache = 128ull << 20;
};

class Node;

// A chunk's bytes as its fetch fills them, in order. Nodes sent here for the chunk (fan-in)
// stream them on as they arrive, so a chunk goes down its tree without waiting at every hop
// for the whole of it. Its buffer is sized once: bytes below filled() never move or change.
class ChunkFill {
 public:
  explicit ChunkFill(size_t length) : data_(length, '\0') {}
  size_t length() const { return data_.size(); }
  size_t filled();
  // The fetch's next bytes; false if they would go past length().
  bool Append(const char* d, size_t n);
  // The fetch is over: a stream waiting past filled() fails.
  void Finish();
  // Calls `ready` once filled() > pos or the fetch is over: at once (in this thread) if so
  // already, else in the fetching thread as the bytes arrive. For readers that must not wait
  // in a thread (the server's). `ready` must not call back into this fill.
  void WhenPast(size_t pos, std::function<void()> ready);
  // Bytes [0, filled()) never move or change.
  const char* data() const { return data_.data(); }
  // Whether the fetch is over; with filled() < length() it failed.
  bool done();
  // The whole chunk, sharing this fill's buffer.
  static std::shared_ptr<const std::string> Whole(const std::shared_ptr<ChunkFill>& f) {
    return std::shared_ptr<const std::string>(f, &f->data_);
  }

 private:
  std::string data_;
  std::mutex mu_;
  size_t filled_ = 0;  // guarded by mu_; written only by the one fetch
  bool done_ = false;  // guarded by mu_
  std::vector<std::pair<size_t, std::function<void()>>> waiters_;  // guarded by mu_
};

// Where a reader gets one chunk's bytes without waiting in a thread: the whole chunk (from
// disk), or the fill of the fetch under way, to follow as it arrives (ChunkFill::WhenPast).
struct ChunkSource {
  std::shared_ptr<const std::string> data;
  std::shared_ptr<ChunkFill> fill;
};

// The chunk version of a write taken by a node (its chunks' key until the store names it).
inline std::string LocalVersion(const std::string& id) { return "local-" + id; }
inline uint64_t ChunkCount(uint64_t size, uint64_t chunk) { return (size + chunk - 1) / chunk; }
// The keys of the first `count` chunks of write `id` of `url`, and of all of write `r`'s.
std::vector<engine::ChunkKey> WriteChunkKeys(const std::string& url, const std::string& id, uint64_t count);
inline std::vector<engine::ChunkKey> WriteChunkKeys(const engine::UploadRecord& r) {
  return WriteChunkKeys(r.url, r.id, ChunkCount(r.size, r.chunk_size));
}

// The replication requests one node sends another (server.cc serves them; the others are
// proto::ReplicaChunkPath and proto::ReplicaDropPath).
using proto::ReplicaChunkPath;
using proto::ReplicaDropPath;
// Completes the copy of `r` from `origin` (at its `incarnation`); `adopt`: the receiver takes
// the write over as its own instead.
std::string ReplicaCommitPath(const engine::UploadRecord& r, const std::string& origin, const std::string& incarnation,
                              bool adopt);

// One object being written through the node. Append in order, then Finish; destroying it
// unfinished discards what was written. Not thread-safe (one writer).
class Writer {
 public:
  ~Writer();
  Status Append(const char* data, size_t len);
  // Zero-copy form of Append: the room left in the current chunk, to fill and then Commit.
  std::pair<char*, size_t> Space();
  Status Commit(size_t n);
  // Stores the last chunk, journals the object (fsynced) and queues its upload: once this
  // returns ok the write is acknowledged and survives a crash. Returns the local version.
  Result<ObjectInfo> Finish();

 private:
  friend class Node;
  Writer(Node* node, std::string url, std::string id) : node_(node), url_(std::move(url)), id_(std::move(id)) {}
  Status Flush();

  Node* node_;
  std::string url_;
  std::string id_;
  std::string buffer_;  // the chunk being filled: chunk_size bytes, fill_ of them written
  size_t fill_ = 0;
  uint64_t chunks_ = 0;
  uint64_t size_ = 0;
  uint64_t reserved_ = 0;  // staged bytes this writer holds
  bool streaming_ = false;  // its parts are being uploaded already (Uploader::Open)
  bool finished_ = false;
  std::vector<cluster::Peer> replicas_;        // nodes that receive a copy of every chunk
  std::deque<std::future<Status>> sends_;      // copies in flight on the copy pool, oldest first
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
  // Chunk `index` of `url` (as of `info`) for a reader that must not wait in a thread: from
  // disk, or the fill of its fetch under way: joined if another reader started it, else
  // started here on the fetch pool (kRoute: through its owner; kForwarded: from the store or
  // the previous owner). kCacheOnly: only from disk. kHeld (fan-in: a node the owner sent
  // here): from disk or a fetch under way, never a new fetch. kNotFound when a mode that may
  // not fetch finds neither; a fetch's own failure (kPreconditionFailed when the store no
  // longer has that version) shows as a fill that ends short, with the reason in
  // FetchError(). Reads the disk: call it on the serve pool, not the event loop.
  Result<ChunkSource> OpenChunk(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode);
  // The error of the last failed fetch of `url`'s chunk `index` (as of `info`), for a reader
  // whose fill ended short; kUnavailable when none is recorded.
  Status FetchError(const std::string& url, const ObjectInfo& info, uint64_t index);
  // Read-ahead for one stream reading chunk `index` sequentially: starts fetches of the next
  // options().readahead chunks that are neither on disk nor being fetched (a routed read:
  // only those this node owns; the rest come from their owners). Never blocks.
  void Prefetch(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode);
  // Blocking work of requests (the server runs handlers here).
  WorkerPool& serve_pool() { return *serve_pool_; }

  // Fetches chunk `index` of `url` (as of `info`) into this node's cache if it is not there:
  // `shoal warmup` asks each owner for its chunks (`route` false: from the store); `warmup
  // --broadcast` asks every node for every chunk (`route`: through the owner, fan-in).
  // Whether it was on disk already.
  Result<bool> Warm(const std::string& url, const ObjectInfo& info, uint64_t index, bool route = false);

  // Cluster: takes this node's place in the static membership (options().peers). The view
  // comes from a live peer when one has it (adopted as is when the membership is the same,
  // else the next epoch is built from it and pushed to every peer), or is built afresh.
  // With etcd (options().etcd), registers there as `endpoint` (HOST:PORT where it listens) and
  // follows the membership from its first revision.
  Status JoinCluster(const std::string& endpoint = "");
  // The cluster as this node sees it; null for a node on its own.
  std::shared_ptr<const cluster::View> view();
  // Takes `v` if it is a newer epoch than ours (a peer pushed it); whether it did.
  bool AdoptView(std::shared_ptr<const cluster::View> v);
  // A request or answer carried epoch `seen`: if it is newer than ours (a push we missed),
  // fetch the newest view from the members, in the background. With etcd the watch catches up.
  void SawEpoch(uint64_t seen);
  // Replication, the side that holds copies: chunk `index` of write `id` (of `url`) taken by
  // another node; then the whole copy, fsynced and journaled (r.origin names that node).
  Status PutReplicaChunk(const std::string& id, const std::string& url, uint64_t index, std::string_view data);
  // `adopt`: not a copy but a write handed off by a draining node: this node uploads it.
  Status CommitReplica(const engine::UploadRecord& r, bool adopt = false);
  // A draining origin hands this node the write its copy is of: the copy becomes this node's
  // own write to upload. kNotFound if no such copy is held here.
  Status AdoptCopy(const std::string& id);
  // The origin made the write durable, or abandoned it: the copy (`chunks` chunks of `url`) goes.
  void DropReplica(const std::string& id, const std::string& url, uint64_t chunks);
  // The state of write `id` taken by this node: "pending", "durable", or "unknown".
  std::string WriteState(const std::string& id);
  // Names this data directory (random, made once): a node that answers "unknown" for a write
  // under the incarnation it had when it sent the copy never acknowledged that write (or handed
  // it off); under another one, it lost its disk.
  const std::string& incarnation() const { return incarnation_; }
  // Copies held here of writes under `prefix` (not yet durable anywhere).
  uint64_t CopiesUnder(const std::string& prefix);

  // Drain (`shoal drain`): leaves the membership, then hands every write not yet uploaded to
  // a node that stays (its copy's holder, else the object's new owner) and every copy held
  // here to another node; runs on a thread of its own. DrainState() reports how far it got.
  Status StartDrain();
  struct DrainState {
    std::string state;  // "", "draining", "done" or "failed"
    uint64_t writes = 0, write_bytes = 0;  // own writes handed off
    uint64_t copies = 0;                   // copies moved to another holder
    uint64_t left = 0;                     // writes and copies still to go
    std::string error;
  };
  DrainState GetDrainState();

  // Applies one membership change from etcd (the watch thread calls it).
  void OnMembership(const cluster::MembershipEvent& event);

  // This node's id in the cluster.
  const std::string& id() const { return options_.node_id; }
  RateLimiter& egress() { return egress_; }
  cluster::SwarmTracker& swarm() { return swarm_; }
  // The HOST:PORT other nodes reach this one at (set by JoinCluster).
  const std::string& advertise() const { return advertise_; }

  // Starts writing `url` through the node (write-back). kInvalidArgument for a bad URL.
  Result<std::unique_ptr<Writer>> BeginWrite(const std::string& url);
  // Whether `url`'s latest write through this node is still waiting for its upload.
  bool Pending(const std::string& url);
  // Objects written through this node and not yet durable (under `prefix`), oldest first.
  std::vector<UploadProgress> PendingUploads(const std::string& prefix);

  // The chunk version of `url` at `etag`: the local version it was written as, if any.
  std::string ChunkVersion(const std::string& url, const std::string& etag);
  // Deletes `url`: the writes of it taken here and not yet uploaded are cancelled (never
  // uploaded; their copies on other nodes dropped), then the object goes from the store.
  Status Delete(const std::string& url);
  // Writes PREFIX/_SHOAL_COMMITTED (store/commit.h) in the store; kPreconditionFailed while
  // writes under the prefix are not yet durable. Returns the marker's JSON.
  Result<std::string> Commit(const std::string& prefix_url);

  NodeMetrics& metrics() { return metrics_; }
  engine::ChunkStore& chunks() { return *chunks_; }
  const NodeOptions& options() const { return options_; }
  // Prometheus text exposition of the metrics.
  std::string MetricsText();

 private:
  friend class Writer;
  explicit Node(NodeOptions options)
      : options_(std::move(options)),
        egress_(options_.egress_limit),
        swarm_(cluster::SwarmTracker::Options{options_.fan_in_direct, options_.fan_in_fanout}) {}
  Status Replay();
  // Makes `r` (journaled, chunks pinned) what readers of its URL get, and queues its upload
  // (`opened`: seals the upload its writer opened).
  ObjectInfo Stage(const engine::UploadRecord& r, bool opened = false);
  // The upload of `r` is committed in the store as `info`.
  Status Durable(const engine::UploadRecord& r, const ObjectInfo& info);
  // Staged-bytes accounting: Reserve waits while the cap is reached.
  Status ReserveStaged(uint64_t n, const std::string& url);
  void ReleaseStaged(uint64_t n);
  Result<std::shared_ptr<ObjectStore>> StoreFor(const ObjectUrl& url);
  // One chunk's bytes: from disk, or fetched once however many callers ask at the same time.
  Result<std::shared_ptr<const std::string>> Chunk(const std::string& url, const ObjectInfo& info,
                                                   uint64_t index, ReadMode mode);
  // Fills `fill` with chunk `index` (from the cluster, else the store), continuing after the
  // bytes it has (a source that failed midway is not asked again for those).
  Result<std::shared_ptr<const std::string>> Fetch(const std::string& url, const ObjectInfo& info,
                                                   uint64_t index, ReadMode mode,
                                                   const std::shared_ptr<ChunkFill>& fill);
  // A chunk from another node: its owner (`cache_only` false) or the previous owner (true).
  // Peers that fail to answer are skipped for a few seconds.
  Result<std::shared_ptr<const std::string>> FetchFromPeer(const cluster::Peer& peer, const std::string& url,
                                                           const ObjectInfo& info, uint64_t index,
                                                           bool cache_only, const std::shared_ptr<ChunkFill>& fill);
  // The chunk from the cluster (owner or previous owner) when another node should have it;
  // kNotFound when the object store is the place to go.
  Result<std::shared_ptr<const std::string>> FetchFromCluster(const std::string& url, const ObjectInfo& info,
                                                              uint64_t index, ReadMode mode,
                                                              const std::shared_ptr<ChunkFill>& fill);
  // GET of the rest of chunk `index` of `url` (what `fill` does not have yet) at the node at
  // `endpoint`, read as `how` (X-Shoal-Read); a 2xx body goes into `fill`. `failed_holder`:
  // the holder this node was sent to and could not get the chunk from (the answer must come
  // from `endpoint` itself).
  Status GetChunk(const std::string& endpoint, const std::string& url, const ObjectInfo& info, uint64_t index,
                  std::string_view how, const std::string& failed_holder, ChunkFill* fill, http::Response* resp);
  bool PeerDown(const std::string& id);
  // One request to another node; its 2xx body in *answer. kNotFound for 404, kUnavailable
  // when it cannot be reached or fails.
  // A peer that cannot be reached is skipped for a few seconds (PeerDown).
  Status CallPeer(const cluster::Peer& peer, const std::string& method, const std::string& path,
                  std::string_view body = {}, std::string* answer = nullptr,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // The nodes that hold copies of a new write to `url` (replicas - 1 of them).
  Result<std::vector<cluster::Peer>> ReplicaTargets(const std::string& url);
  // Checks on the origins of the copies held here; takes over the upload of a copy whose
  // origin is gone. Runs on replica_thread_.
  void WatchReplicas();
  Status TakeOver(const std::string& id, const std::string& why);
  void Drain();
  Status LeaveCluster();
  // Sends write `r`'s chunks to `peer` and completes it there (a copy, or `adopt`ed).
  Status SendWrite(const cluster::Peer& peer, const engine::UploadRecord& r, bool adopt);
  // Forgets an own write handed to another node (its upload here is cancelled).
  void ForgetWrite(const engine::UploadRecord& r, uint64_t uploaded);
  // Tells the nodes holding copies of own write `r` (all but `except`) to drop them.
  void DropCopiesOf(const engine::UploadRecord& r, const std::string& except = "");
  // Joins the fetch of chunk `key` under way, or becomes its leader: `lead` set, the caller
  // must run RunFetch (inline or on the fetch pool).
  struct Inflight;
  Inflight JoinFetch(const engine::ChunkKey& key, const ObjectInfo& info, bool* lead);
  void RunFetch(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode,
                const Inflight& job);

  NodeOptions options_;
  // Declared first of what holds the data directory, so it is released last.
  std::unique_ptr<FileLock> data_dir_lock_;
  NodeMetrics metrics_;
  std::unique_ptr<engine::ChunkStore> chunks_;
  engine::HotChunks hot_{options_.memory_cache};

  std::mutex stores_mu_;
  std::map<std::string, std::shared_ptr<ObjectStore>> stores_;  // guarded by stores_mu_

  struct Meta {
    ObjectInfo info;
    std::chrono::steady_clock::time_point fetched;
    bool local = false;  // written here, not yet durable: trusted without a TTL
  };
  std::mutex meta_mu_;
  std::unordered_map<std::string, Meta> meta_;  // guarded by meta_mu_

  using ChunkResult = Result<std::shared_ptr<const std::string>>;
  using ChunkFuture = std::shared_future<ChunkResult>;
  std::mutex inflight_mu_;
  struct Inflight {
    std::string id;                   // the chunk's id (engine::ChunkKey::Id)
    ChunkFuture result;               // the whole chunk, for readers here that wait in a thread
    std::shared_ptr<ChunkFill> fill;  // its bytes so far, for readers that follow it
    std::shared_ptr<std::promise<ChunkResult>> promise;  // set by the leader
  };
  std::unordered_map<std::string, Inflight> inflight_;  // chunk id -> its fetch; guarded
  // The errors of fetches that failed, for readers that followed their fill; guarded by
  // inflight_mu_; bounded (oldest dropped).
  std::map<std::string, Status> fetch_errors_;
  std::deque<std::string> fetch_error_order_;

  // url + '\n' + store ETag -> the local version its chunks were written as; guarded by meta_mu_.
  std::unordered_map<std::string, std::string> aliases_;

  std::unique_ptr<engine::Journal> journal_;
  std::unique_ptr<Uploader> uploader_;

  std::mutex staged_mu_;
  std::condition_variable staged_cv_;
  uint64_t staged_bytes_ = 0;  // written here, not yet durable (writes in progress too); guarded

  RateLimiter egress_;
  cluster::SwarmTracker swarm_;
  std::string advertise_;
  std::unique_ptr<cluster::EtcdMembership> etcd_;  // destroyed first: its watch calls into the node
  Status JoinEtcd(const std::string& endpoint);
  std::mutex view_mu_;
  std::shared_ptr<const cluster::View> view_;  // guarded by view_mu_
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> peer_down_until_;  // guarded by view_mu_
  std::atomic<bool> closing_{false};  // the destructor has begun
  std::string incarnation_;
  std::atomic<bool> draining_{false};  // refuses new writes and copies
  std::atomic<int> writers_{0};        // Writers alive
  std::chrono::steady_clock::time_point last_refresh_;  // guarded by refresh_mu_
  std::mutex refresh_mu_;
  bool refreshing_view_ = false;  // guarded by refresh_mu_
  std::thread refresh_thread_;    // guarded by refresh_mu_
  http::Client peers_;  // connections to other nodes

  struct Copy {
    engine::UploadRecord record;
    std::chrono::steady_clock::time_point origin_down_since{};  // zero while it answers
  };
  std::mutex copies_mu_;
  std::map<std::string, Copy> copies_;  // write id -> copy held for another node; guarded
  std::condition_variable copies_cv_;
  bool stopping_ = false;  // guarded by copies_mu_
  std::thread replica_thread_;
  std::mutex drain_mu_;
  DrainState drain_;  // guarded by drain_mu_
  std::thread drain_thread_;

  // Declared last, so destroyed first: their threads end (running what is queued) while
  // everything their tasks use still exists.
  std::unique_ptr<WorkerPool> copy_pool_;   // writers' chunk copies to replicas (writers run on serve_pool_)
  std::unique_ptr<WorkerPool> fetch_pool_;  // chunk fetches for readers that follow a fill
  std::unique_ptr<WorkerPool> serve_pool_;  // the server's blocking handlers
};

}  // namespace shoal::node

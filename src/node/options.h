#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/membership.h"
#include "node/node_auth.h"

namespace shoal::node {

// A setting shoald may change while it runs (SIGHUP reloads its config file): read and
// stored atomically, through a const NodeOptions& too. Copying reads it once.
template <typename T>
class Reloadable {
 public:
  Reloadable(T v = T{}) : v_(v) {}  // NOLINT: implicit, so `int readahead = 32;` reads as before
  Reloadable(const Reloadable& other) : v_(other.get()) {}
  Reloadable& operator=(const Reloadable& other) {
    set(other.get());
    return *this;
  }
  T get() const { return v_.load(std::memory_order_relaxed); }
  operator T() const { return get(); }  // NOLINT
  void set(T v) const { v_.store(v, std::memory_order_relaxed); }

 private:
  mutable std::atomic<T> v_;
};

// The most --upload-concurrency may be (at start and on SIGHUP): as many upload threads.
constexpr int kMaxUploadConcurrency = 256;

// Everything a node is started with (shoald's flags and config file, daemon.cc). Every part
// keeps a const reference. Read-only once the node is created, except the Reloadable fields,
// which a SIGHUP may change (docs/node.md lists them): read them at each use.
struct NodeOptions {
  std::string listen = "127.0.0.1:7070";  // HOST:PORT; port 0 picks a free one
  std::string data_dir;
  uint64_t capacity = 20ull << 30;
  uint64_t max_chunks = 4ull << 20;  // chunks cached at most, pinned ones aside (--max-chunks)
  uint64_t pack_below = 1ull << 20;  // chunks smaller than this share pack files (--pack-below; 0: none)
  uint64_t chunk_size = 8ull << 20;
  std::string node_id;
  // The cluster's token(s) (--token-file); a SIGHUP rotates them in place. Empty:
  // unauthenticated (said at start).
  ClusterToken token;
  Reloadable<std::chrono::seconds> metadata_ttl{std::chrono::seconds(60)};
  Reloadable<bool> validate = false;       // check the ETag with the store on every open
  // Most chunks fetched ahead of a sequential reader: each object's window starts at 4 and
  // doubles while its readers catch up with it (readahead.h).
  Reloadable<int> readahead = 32;
  bool sync = true;                        // fsync chunk files
  // Write-back: bytes written here and not yet durable at most (0: half the capacity); a
  // writer at the cap waits for uploads (up to writer_timeout) rather than failing.
  uint64_t staged_cap = 0;
  // Most writes taken here and not yet durable (each holds about 1.5 KiB of memory: its journal
  // record, catalog and directory entries, upload state): many tiny writes are bounded by their
  // count as larger ones are by staged_cap. A writer at the bound waits too.
  uint64_t staged_writes = 262144;
  std::chrono::milliseconds writer_timeout{std::chrono::minutes(10)};
  int upload_concurrency = 8;              // part uploads in flight at most (1..kMaxUploadConcurrency)
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
  // Connections this node keeps open to one other node at most (its calls to that node wait for
  // one to be free); 0: no bound.
  int peer_connections = 16;
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
  Reloadable<int> max_connections = 1024;
  // Threads for blocking work of requests (disk reads, writes and fsyncs, handlers:
  // `serve_threads`) and chunk fetches from peers and the store (`fetch_threads`: how many
  // chunks are fetched at once at most; writers' chunk copies to their replicas run on a
  // second pool as large). 0: from the core count. The server's event loop has its own.
  // A fetch holds its thread while it lasts (a fan-in stream from a slow holder, seconds), so
  // the fetch and copy pools are elastic: `fetch_threads_kept` of their threads at rest (set
  // by Node::Create), more started while fetches wait for one, ended after 10 s idle.
  int serve_threads = 0;
  int fetch_threads = 0;
  int fetch_threads_kept = 0;
  // Whole chunks kept in memory after a read or a fetch (engine::HotChunks), so small reads of
  // a warm object cost no chunk-file read each; 0: none.
  uint64_t memory_cache = 128ull << 20;
  // Chunks on disk are sent to plain (not TLS) connections with sendfile(2) from their files
  // (engine::ChunkStore::OpenFile); false: read into memory and written, as TLS is.
  bool sendfile = true;
};

}  // namespace shoal::node

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/worker_pool.h"
#include "engine/chunk_store.h"
#include "engine/hot_chunks.h"
#include "net/http_client.h"
#include "node/directory.h"
#include "node/metrics.h"
#include "node/objects.h"
#include "node/options.h"
#include "node/readahead.h"
#include "node/routing.h"

namespace shoal::node {

// How a read may fill a chunk it does not hold.
enum class ReadMode {
  kRoute,      // a client's request: ask the chunk's owner (one hop), else the object store
  kForwarded,  // sent by a peer or a client that routed it already: no further hop
  kCacheOnly,  // answer only from local disk (a new owner asking the previous one)
  kHeld,       // fan-in: from local disk, or streamed as this node's own fetch of it arrives; never fetched for the asker
};

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
// Or, for a reader that sends from files (sendfile), the chunk's file on disk.
struct ChunkSource {
  std::shared_ptr<const std::string> data;
  std::shared_ptr<ChunkFill> fill;
  std::shared_ptr<engine::ChunkFile> file;
};

// Bytes [from, from + len) of a chunk that a reader would send straight from the chunk's file.
struct FileRange {
  uint64_t from = 0, len = 0;
};

// The read path: a chunk of an object from memory (engine::HotChunks), from disk
// (engine::ChunkStore), or fetched once however many readers want it at the same time: from
// the chunk's owner in the cluster (or the node it was sent to, fan-in, or its previous
// owner), else from the object store. Fetches run on a pool of their own (--fetch-threads);
// readers follow a fetch's bytes as they arrive (ChunkFill) without holding a thread.
//
// Thread-safety: every method may be called from any thread. inflight_mu_ guards the fetches
// under way and the errors of failed ones; it is never held while a chunk is read, fetched or
// cached, nor while a fill's waiters run. The destructor waits for the fetches queued or
// running (their pool ends first).
class ReadPath {
 public:
  ReadPath(const NodeOptions& options, NodeMetrics* metrics, engine::ChunkStore* chunks, ObjectCatalog* objects,
           ClusterRouting* cluster, WriteDirectory* directory);
  ~ReadPath();

  // Chunk `index` of `url` (as of `info`) for a reader that must not wait in a thread: from
  // memory or disk, or the fill of its fetch under way: joined if another reader started it,
  // else started here on the fetch pool (kRoute: through its owner; kForwarded: from the store
  // or the previous owner). kCacheOnly: only from disk. kHeld (fan-in: a node the owner sent
  // here): from disk or a fetch under way, never a new fetch. kNotFound when a mode that may
  // not fetch finds neither; a fetch's own failure (kPreconditionFailed when the store no
  // longer has that version) shows as a fill that ends short, with the reason in
  // FetchError(). With `as_file` (a reader that can send from a file): a chunk on disk comes as
  // its open file (engine::ChunkStore::OpenFile: checked, or its pages to send known good and
  // in memory), ahead of memory unless fewer than kFileMinBytes are wanted of it. Reads the
  // disk: call it on a pool, not the event loop.
  Result<ChunkSource> OpenChunk(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode,
                                const FileRange* as_file = nullptr);
  // The error of the last failed fetch of `url`'s chunk `index` (as of `info`), for a reader
  // whose fill ended short; kUnavailable when none is recorded.
  Status FetchError(const std::string& url, const ObjectInfo& info, uint64_t index);
  // Read-ahead for one stream reading chunk `index` sequentially: starts fetches of the next
  // chunks in the object's read-ahead window (readahead.h: from 4 up to options.readahead,
  // doubled each time a reader of it catches up with a fetch) that are neither on disk nor
  // being fetched (a routed read: only those this node owns; the rest come from their
  // owners). None while as many fetches are under way as the pool has threads: a read-ahead
  // must not queue in front of a reader's own fetch. Never blocks.
  void Prefetch(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode);
  // Fetches chunk `index` of `url` (as of `info`) into this node's cache if it is not there,
  // waiting for it: `shoal warmup` asks each owner for its chunks (`route` false: from the
  // store); `warmup --broadcast` asks every node for every chunk (`route`: through the owner,
  // fan-in). Whether it was on disk already.
  Result<bool> Warm(const std::string& url, const ObjectInfo& info, uint64_t index, bool route = false);

  // Keeps `bytes`, the first chunk of `url` as of `info`, fetched with its metadata
  // (ObjectCatalog::FirstChunk), on disk and in memory; nothing when they are not the whole
  // chunk.
  void KeepFirstChunk(const std::string& url, const ObjectInfo& info, std::string bytes);
  // Whether a read of `url`'s first chunk would take it from the store here: no version of
  // it is held here, and this node is its owner (or alone) with no previous owner to ask, and
  // not joining the cluster (ClusterRouting::Joining: its view is partial).
  bool FirstChunkFromStore(const std::string& url);

  engine::HotChunks& hot() { return hot_; }

  // A piece of a chunk smaller than this is sent from memory when the chunk is there: opening
  // its file and asking which of its pages are in memory costs more than the copy it saves.
  static constexpr uint64_t kFileMinBytes = 64 << 10;

 private:
  using ChunkResult = Result<std::shared_ptr<const std::string>>;
  struct Inflight {
    std::string id;                                       // the chunk's id (engine::ChunkKey::Id)
    std::string fetch;                                    // FetchId: the chunk and the size it is read at
    std::shared_future<ChunkResult> result;               // the whole chunk, for readers that wait in a thread
    std::shared_ptr<ChunkFill> fill;                      // its bytes so far, for readers that follow it
    std::shared_ptr<std::promise<ChunkResult>> promise;  // set by the leader
  };
  // Joins the fetch of chunk `key` under way, or becomes its leader: `lead` set, the caller
  // must run RunFetch (inline or on the fetch pool). Nothing (nullopt) when the chunk is held
  // here after all: a fetch finished between the caller's look and this call (RunFetch caches
  // the chunk before it leaves inflight_, so looking under inflight_mu_ closes that gap and a
  // chunk is never fetched twice by one node); the caller looks again.
  std::optional<Inflight> JoinFetch(const engine::ChunkKey& key, const ObjectInfo& info, bool* lead);
  // What a fetch is shared under: the chunk and the object's size its reader named. A reader
  // that names a wrong size gets a fetch (and an error) of its own: the store's answer is
  // checked against the size, and an honest reader never joins, or inherits the error of, a
  // fetch made for a lie.
  static std::string FetchId(const engine::ChunkKey& key, const ObjectInfo& info);
  // What a read-ahead window is kept under: the object, its version and size, not the chunk.
  static std::string StreamOf(const engine::ChunkKey& key, const ObjectInfo& info);
  // Runs fetch `job` and ends it (EndFetch); or, when the chunk's owner is away restarting
  // (ClusterRouting::PeerAway), asks it again after kRestartPoll, holding no thread meanwhile
  // (WorkerPool::SubmitAfter), so reads of other chunks go on while many wait for one node.
  // `waited`: this is such a later attempt.
  void RunFetch(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode, const Inflight& job,
                bool waited = false);
  static constexpr std::chrono::milliseconds kRestartPoll{200};
  // Ends fetch `job` with `result`: cached in memory when whole, its fill finished, its waiters
  // answered, and no longer in flight.
  void EndFetch(const Inflight& job, const ChunkResult& result);
  // Fills `fill` with chunk `index` (from the cluster, else the store), continuing after the
  // bytes it has (a source that failed midway is not asked again for those).
  // *owner_away: the chunk's owner is away restarting and should be asked again later (the
  // result is then its kUnavailable, and nothing went to the store).
  ChunkResult Fetch(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode,
                    const std::shared_ptr<ChunkFill>& fill, bool* owner_away);
  // A chunk of a write not yet in the store (a local version): from the nodes holding it (the
  // one that took it, then its copies' holders), asked for what they have on disk. Never the
  // store. kPreconditionFailed when they no longer have it (uploaded or replaced since; Fetch
  // then asks the write's home what it was uploaded as), kUnavailable when none can be reached.
  ChunkResult FetchFromHolders(const std::string& url, const ObjectInfo& info, uint64_t index,
                               const std::shared_ptr<ChunkFill>& fill);
  // The chunk from the cluster (owner or previous owner) when another node should have it;
  // kNotFound when the object store is the place to go, and then *stand_in_for names the owner
  // this node goes there for when that is another node (down, skipped, or failing), else "".
  // *owner_away: as Fetch's.
  ChunkResult FetchFromCluster(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode,
                               std::string* stand_in_for, const std::shared_ptr<ChunkFill>& fill, bool* owner_away);
  // Logs (at most once per owner per kStandInLogEvery) that this node reads `owner`'s chunks
  // from the store, and why: the store traffic a member's absence costs is then explained.
  void LogStandIn(const std::string& owner, const Status& why);
  static constexpr std::chrono::seconds kStandInLogEvery{10};
  // A chunk from another node: its owner (`cache_only` false) or the previous owner (true).
  ChunkResult FetchFromPeer(const cluster::Peer& peer, const std::string& url, const ObjectInfo& info,
                            uint64_t index, bool cache_only, const std::shared_ptr<ChunkFill>& fill);
  // GET of the rest of chunk `index` of `url` (what `fill` does not have yet) at the node at
  // `endpoint`, read as `how` (X-Shoal-Read); a 2xx body goes into `fill`. `failed_holder`:
  // the holder this node was sent to and could not get the chunk from (the answer must come
  // from `endpoint` itself).
  Status GetChunk(const std::string& endpoint, const std::string& url, const ObjectInfo& info, uint64_t index,
                  std::string_view how, const std::string& failed_holder, ChunkFill* fill, http::Response* resp);
  // One chunk's bytes, waiting in this thread: from disk, or fetched once (Warm).
  ChunkResult Chunk(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode);

  const NodeOptions& options_;
  NodeMetrics* metrics_;
  engine::ChunkStore* chunks_;
  ObjectCatalog* objects_;
  ClusterRouting* cluster_;
  WriteDirectory* directory_;
  engine::HotChunks hot_{options_.memory_cache};
  ReadaheadWindows readahead_;
  std::mutex inflight_mu_;
  std::unordered_map<std::string, Inflight> inflight_;  // FetchId -> its fetch; guarded by inflight_mu_
  // The errors of fetches that failed (by FetchId), for readers that followed their fill;
  // guarded by inflight_mu_; bounded (oldest dropped).
  std::map<std::string, Status> fetch_errors_;
  std::deque<std::string> fetch_error_order_;
  std::mutex stand_in_mu_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> stand_in_logged_;  // guarded by stand_in_mu_
  std::atomic<bool> closing_{false};  // the destructor has begun
  // Declared last, so destroyed first: its threads end (running what is queued) while
  // everything their fetches use still exists.
  std::unique_ptr<WorkerPool> fetch_pool_;
};

}  // namespace shoal::node

#pragma once

#include <atomic>
#include <functional>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "common/strings.h"
#include "common/worker_pool.h"
#include "engine/chunk_store.h"
#include "engine/journal.h"
#include "node/directory.h"
#include "node/metrics.h"
#include "node/objects.h"
#include "node/options.h"
#include "node/routing.h"
#include "node/uploader.h"

namespace shoal::node {

class WriteBack;

// Completes the copy of `r` from `origin` (at its `incarnation`) on the node it is sent to;
// `adopt`: the receiver takes the write over as its own instead. The POST's body is
// proto::ReplicaCommitBody(r.meta), so the copy uploads with the write's metadata.
std::string ReplicaCommitPath(const engine::UploadRecord& r, const std::string& origin, const std::string& incarnation,
                              bool adopt);

// One object being written through the node. Append in order, then Finish; destroying it
// unfinished discards what was written (and the copies sent of it). Not thread-safe (one
// writer).
class Writer {
 public:
  ~Writer();
  Status Append(const char* data, size_t len);
  // Zero-copy form of Append: the room left in the current chunk, to fill and then Commit.
  std::pair<char*, size_t> Space();
  Status Commit(size_t n);
  // Stores the last chunk, makes every copy complete on its node, journals the object
  // (fsynced) and queues its upload: once this returns ok the write is acknowledged and
  // survives a crash. This node's sync (and the journal record of a write not yet uploading)
  // overlaps the copies' completion. Returns the local version. With --staged-writes writes
  // staged, it first waits for an upload to end (up to the writer timeout).
  Result<ObjectInfo> Finish();

 private:
  friend class WriteBack;
  Writer(WriteBack* wb, std::string url, std::string id, ObjectMeta meta)
      : wb_(wb), url_(std::move(url)), id_(std::move(id)), meta_(std::move(meta)), begun_unix_us_(NextBegunUnixMicros()) {}
  // Now in microseconds since the epoch, larger than any it returned before in this process.
  static uint64_t NextBegunUnixMicros();
  Status Flush();
  Result<ObjectInfo> Acknowledge();  // Finish's work, its place under --staged-writes taken
  // One copy of one chunk on its way to a holder.
  struct Send {
    std::string holder;          // its member id
    std::future<Status> result;  // on the copy pool
  };
  // Waits for `send`. A holder that cannot be reached (kUnavailable: it died, say) is replaced
  // by the next live node of the object's route, which gets every chunk stored so far, read
  // back from this node's disk: the write goes on while enough members live. Other errors,
  // and no node to take its place, fail the write.
  Status Collect(Send& send);
  Status ReplaceHolder(const std::string& dead, const Status& why);

  WriteBack* wb_;
  std::string url_;
  std::string id_;
  ObjectMeta meta_;     // journaled with the write, given to the store by its upload
  uint64_t begun_unix_us_;  // UploadRecord::begun_unix_us
  std::string buffer_;  // the chunk being filled, fill_ bytes of it written (it grows to chunk_size)
  size_t fill_ = 0;
  uint64_t chunks_ = 0;
  uint64_t stored_ = 0;  // chunks on this node's disk (chunks_, or one more inside Flush)
  uint64_t size_ = 0;
  uint64_t reserved_ = 0;    // staged bytes this writer holds
  bool stream_ = true;       // its parts may be uploaded before Finish (BeginWrite's `stream`)
  bool streaming_ = false;   // its parts are being uploaded already (Uploader::Open)
  bool finished_ = false;
  std::vector<cluster::Peer> replicas_;    // nodes that receive a copy of every chunk
  std::deque<Send> sends_;                 // copies in flight on the copy pool, oldest first
  // A write of one chunk (Acknowledge found none stored before its last): that chunk, sent to
  // each holder with the commit (proto::kReplicaWholePath) instead of on its own.
  bool whole_next_ = false;
  std::shared_ptr<const std::string> whole_;
};

// Write-back: objects written through this node. A write's chunks are pinned on local disk
// and copied to --replicas - 1 other nodes as they come; Finish fsyncs them, completes the
// copies and journals the write, and from then on it is acknowledged: readers through this
// node get it at once, and the Uploader puts it in the object store in the background. Bytes
// not yet durable are bounded (--staged-cap), and so is their count (--staged-writes): a writer
// at either waits for uploads.
//
// Thread-safety: every method may be called from any thread; a Writer is used by one thread.
// staged_mu_ guards the staged-bytes and staged-writes counts (writers wait on staged_cv_ under it); ids_mu_ the
// ids of live writers, of staged writes by URL and of writes made durable lately; nothing
// else is called under either.
// upload_ids_mu_ is held across the journal writes that name a write's upload in the store
// (the journal's own lock is taken under it, never the other way). The journal, chunk store,
// catalog and uploader are thread-safe on their own. The destructor ends the copy pool and the uploader (their threads finish what runs).
class WriteBack {
 public:
  WriteBack(const NodeOptions& options, NodeMetrics* metrics, engine::ChunkStore* chunks, engine::Journal* journal,
            ObjectCatalog* objects, ClusterRouting* cluster, WriteDirectory* directory, const std::string& incarnation);
  ~WriteBack();

  // Starts writing `url` with `meta` through the node. kInvalidArgument for a bad URL or key
  // or metadata the store cannot hold (ObjectStore::ValidateWrite), kUnavailable while
  // draining or when too few nodes are up for --replicas copies. `stream`: its chunks go up to
  // the store while it is written (from the second on); false: nothing goes up before Finish
  // (a write that may yet be discarded, so the store sees no requests for it).
  Result<std::unique_ptr<Writer>> BeginWrite(const std::string& url, const ObjectMeta& meta = {}, bool stream = true);
  // Whether `url`'s latest write through this node is still waiting for its upload.
  bool Pending(const std::string& url) { return objects_->IsLocal(url); }
  // Objects written through this node and not yet durable (under `prefix`), oldest first.
  // With `generation`, also a name for how far this node has changed the store (this process,
  // and the writes that left the list and the deletes done since it started): it changes when
  // a write leaves the list (read with it, under one lock) or a delete through this node is
  // done in the store. A listing of the store made after it was read, with these writes merged
  // in, still holds while it is the same (ListingCache).
  std::vector<UploadProgress> PendingUploads(const std::string& prefix, std::string* generation = nullptr);
  // The state of write `id` taken by this node, as the holders of its copies ask: "pending"
  // (journaled and not yet durable, or its writer still at work), else "unknown": never
  // acknowledged here, durable (its record is removed once it is), or handed off. A holder
  // drops its copy on "unknown" under the incarnation the copy came with.
  std::string WriteState(const std::string& id);
  // Where the write acknowledged as local `version` (the ETag Writer::Finish returned) is, for
  // a client that waits for it to be durable: kDurable once uploaded (*stored: the store's
  // size, ETag and date of it), kPending while its upload is to come, kGone when it is neither
  // here nor known durable (deleted, handed to another node, or uploaded so long ago that it
  // is no longer remembered: the last kDurableKept are).
  enum class Outcome { kPending, kDurable, kGone };
  Outcome OutcomeOf(const std::string& version, ObjectInfo* stored);
  // Deletes `url`: the writes of it taken here and not yet uploaded are cancelled (never
  // uploaded; their copies on other nodes dropped), then the object goes from the store.
  // A write of it pending on another member (the object's home says which) is that member's
  // to cancel: the delete goes on there (`forwarded` is set on that hop, which goes no
  // further), and fails with kUnavailable, changing nothing more, when it cannot be reached.
  Status Delete(const std::string& url, bool forwarded = false);

  // An own write found in the journal at start (not yet durable): its chunks pinned again,
  // then as Own.
  void Restore(const engine::UploadRecord& r);
  // `r` (journaled as this node's own write, chunks on disk and pinned) becomes this node's
  // to upload: a copy taken over, or a write a draining node handed here.
  void Own(const engine::UploadRecord& r);
  // Takes own write `id` out of the upload queue; the bytes of it uploaded so far.
  uint64_t CancelUpload(const std::string& id) { return uploader_->Cancel(id); }
  // Queues own write `r`'s upload again (a hand-off that failed).
  void Requeue(const engine::UploadRecord& r) { uploader_->Add(r); }
  // Forgets own write `r` handed to another node, or deleted (`uploaded` bytes of it were
  // uploaded already): its record, chunks and staged bytes go.
  void Forget(const engine::UploadRecord& r, uint64_t uploaded);
  // Tells the nodes holding copies of own write `r` (all but `except`) to drop them.
  void DropCopiesOf(const engine::UploadRecord& r, const std::string& except = "");
  // The bytes upload sends of chunk `index` of write `r`: the chunk's, but for a commit marker
  // written back (Node::Commit), whose local versions are replaced by the store's ETags once
  // every write it names is uploaded (kUnavailable until then: the uploader asks again).
  Result<std::string> UploadBytes(const engine::UploadRecord& r, uint64_t index);
  // Delete's parts: the writes of `url` taken here cancelled (how many were staged); the
  // member whose pending write of `url` the home knows ("" for none, or this node); the delete
  // sent on to it.
  size_t DeleteOwnWrites(const std::string& url);
  std::string PendingElsewhere(const std::string& url);
  Status ForwardDelete(const std::string& origin, const std::string& url);

  // A drain began: new writes are refused.
  void SetDraining() { draining_ = true; }
  bool draining() const { return draining_; }
  // Writers alive (a drain waits for them).
  int writers() const { return writers_; }
  uint64_t staged_bytes();
  uint64_t staged_writes();
  WriteDirectory& directory() { return *directory_; }
  int upload_window() const { return uploader_->window(); }
  // --upload-concurrency while running (SIGHUP): Uploader::SetMaxConcurrency.
  void SetUploadConcurrency(int parts) { uploader_->SetMaxConcurrency(parts); }
  int upload_concurrency() const { return uploader_->max_concurrency(); }
  std::vector<AccountUploads> upload_accounts() const { return uploader_->Accounts(); }

 private:
  friend class Writer;
  // Makes `r` (journaled, chunks pinned) what readers of its URL get, and queues its upload
  // (`opened`: seals the upload its writer opened). `taken_before`: a write not acknowledged
  // here just now (replayed, taken over, handed over), which may be older than what the store
  // holds: compared with it before it is answered (ObjectCatalog::SetLocal). `told`: homes
  // that recorded the pending write already (with its copy), not announced to again.
  ObjectInfo Stage(const engine::UploadRecord& r, bool opened = false, bool taken_before = false,
                   const std::vector<std::string>& told = {});
  // The upload of `r` is committed in the store as `info` (the uploader calls it).
  Status Durable(const engine::UploadRecord& r, const ObjectInfo& info);
  // The store holds a newer write of r's object (UploadHooks::superseded): r is dropped.
  Status Superseded(const engine::UploadRecord& r, const ObjectInfo& newer);
  // Tells r's copies' holders to drop them, and unpins r's chunks here. `stored`: the ETag the
  // store holds r's bytes as, so that the holders keep their copies' chunks as cached chunks
  // of it (Replicas::Drop); "" when r was not uploaded as its chunks' bytes.
  void DropCopies(const engine::UploadRecord& r, const std::string& stored = "");
  // A multipart upload of `r` was begun in the store (the uploader calls it): its id goes in
  // the journal, or, for a write still in progress, in the record its Finish writes.
  void UploadBegun(const engine::UploadRecord& r, const std::string& upload_id);
  // Staged-bytes accounting: Reserve waits while the cap is reached.
  Status ReserveStaged(uint64_t n, const std::string& url);
  void ReleaseStaged(uint64_t n);
  // Staged-writes accounting: a place for one more write, waited for while --staged-writes are
  // staged (Finish takes it before journaling; Own for a record replayed or adopted, without
  // waiting); Forget, or a Finish that fails, gives it back.
  Status ReserveWrite(const std::string& url);
  // Waits under `lock` (of staged_mu_) while full(), at most the writer timeout, counting the
  // wait in `waits`; false when no room was made.
  bool WaitForRoom(std::unique_lock<std::mutex>& lock, const std::function<bool()>& full, std::atomic<uint64_t>& waits);
  void CountWrite();
  void CountWriteLocked();  // staged_mu_ held
  void ReleaseWrite();
  // The nodes that hold copies of a new write to `url` (replicas - 1 of them).
  // The first member of `url`'s route not in `skip` and not known down: a copy's holder in
  // place of one that died.
  std::optional<cluster::Peer> NextHolder(const std::string& url, const std::vector<std::string>& skip);
  Result<std::vector<cluster::Peer>> ReplicaTargets(const std::string& url);

  const NodeOptions& options_;
  NodeMetrics* metrics_;
  engine::ChunkStore* chunks_;
  engine::Journal* journal_;
  ObjectCatalog* objects_;
  ClusterRouting* cluster_;
  WriteDirectory* directory_;
  const std::string& incarnation_;
  // Guards live_ and staged_ids_; nothing else is called under it.
  std::mutex ids_mu_;
  std::unordered_set<std::string> live_;  // ids of Writers alive (not yet journaled, or finishing)
  // url -> ids of own writes staged (journaled, not yet durable), for Delete.
  std::unordered_map<std::string, std::set<std::string>> staged_ids_;
  // Ids of own writes made durable lately -> the store's version of them, for OutcomeOf;
  // the newest kDurableKept, oldest dropped first (durable_order_). Guarded by ids_mu_.
  static constexpr size_t kDurableKept = 4096;
  std::unordered_map<std::string, ObjectInfo> durable_;
  std::deque<std::string> durable_order_;
  void Untrack(const engine::UploadRecord& r);  // from staged_ids_; ids_mu_ held
  // Write `id` is settled as `stored` (OutcomeOf answers kDurable); ids_mu_ held.
  void RememberDurable(const std::string& id, const ObjectInfo& stored);
  // Guards begun_uploads_, and orders the journal's changes of a write's record that name its
  // upload (Finish's first record, UploadBegun, Forget), so an id journaled late neither goes
  // missing nor brings a removed record back. Held across those journal writes.
  std::mutex upload_ids_mu_;
  // id -> the store's upload id, of writes whose upload began before Finish journaled them.
  std::unordered_map<std::string, std::string> begun_uploads_;
  std::atomic<bool> draining_{false};
  std::atomic<int> writers_{0};
  const std::string run_ = RandomHex();  // this process, in generations
  std::atomic<uint64_t> deletes_{0};      // deletes done in the store through this node
  std::mutex staged_mu_;
  std::condition_variable staged_cv_;
  uint64_t staged_bytes_ = 0;  // written here, not yet durable (writes in progress too); guarded
  uint64_t staged_writes_ = 0;  // writes staged here (and finishing); guarded
  std::unique_ptr<Uploader> uploader_;
  // Declared last, so destroyed first: writers' chunk copies to their replicas.
  std::unique_ptr<WorkerPool> copy_pool_;
};

}  // namespace shoal::node

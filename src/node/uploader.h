#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/worker_pool.h"
#include "engine/journal.h"
#include "node/metrics.h"
#include "store/object_store.h"

namespace shoal::node {

struct UploaderOptions {
  int max_concurrency = 8;  // part uploads in flight at most, across objects
  // A write not durable this long after it was acknowledged is reported (log, metric, flush).
  std::chrono::milliseconds deadline{std::chrono::minutes(15)};
};

// What the uploader needs from the node.
struct UploadHooks {
  std::function<Result<std::shared_ptr<ObjectStore>>(const std::string& url)> store;
  // The bytes of chunk `index` of an acknowledged write. For a whole object (one chunk),
  // kPreconditionFailed means not yet (it waits for other writes: a commit marker): asked
  // again every kWaitingRetry, which is not counted as a failure.
  std::function<Result<std::string>(const engine::UploadRecord&, uint64_t index)> chunk;
  // The object is committed in the store as `info`: journal it durable, unpin, alias.
  std::function<Status(const engine::UploadRecord&, const ObjectInfo&)> durable;
  // The store holds a newer write of the object (`newer`, as Head answered): this one is never
  // committed. Drop it as if it were durable, but keep nothing of it as the object's content.
  std::function<Status(const engine::UploadRecord&, const ObjectInfo& newer)> superseded;
  // `bytes` more of a write reached the store (each part counted once per upload job).
  std::function<void(uint64_t bytes)> uploaded;
  // A multipart upload of the write was begun in the store as `upload_id`
  // (MultipartUpload::id): journal it, so a restart resumes it instead of leaving it open.
  // Called before any of its parts is sent.
  std::function<void(const engine::UploadRecord&, const std::string& upload_id)> begun;
};

// Where one pending upload stands, for /v1/pending and `shoal flush`.
struct UploadProgress {
  engine::UploadRecord record;
  uint64_t parts = 0;
  uint64_t parts_done = 0;
  int failures = 0;          // consecutive failed attempts
  std::string last_error;    // of the latest failure
  bool overdue = false;      // older than the deadline
};

// The metadata an upload gives the store: the write's own, and its stamp (kWriteStampMeta:
// UploadRecord::Stamp).
ObjectMeta StoredMeta(const engine::UploadRecord& r);

// Uploads acknowledged writes to the object store in the background. Objects are taken in
// FIFO order (oldest write first) and cut into parts (one per chunk); up to max_concurrency
// parts are in flight at once, across objects, so one large checkpoint uses many connections
// and small ones pipeline behind it. Two writes of one object may send parts at once, but the
// newer commits (its Put or Complete) only once the older is committed or cancelled, so the
// store ends with the newest. Each storage account (AccountLabel of the object's URL)
// has a window of its own that adapts to it (AIMD): it halves, at most once per round trip,
// when a part meets a 429 or 503 (the account's request for less load, already retried with
// back-off by the store client), and grows by one part per window of clean parts up to
// max_concurrency; an object waits while its account's window is full and objects of other
// accounts behind it go on, so one throttling account slows only its own uploads. A part that still fails is retried after a delay that doubles from
// 0.2 s to 30 s; the object's other parts go on. An object is committed (Put Block List /
// CompleteMultipartUpload, or one Put for a single chunk) only when every part is in, and its
// commit names only the parts of its own attempt, so no duplicate block is ever committed.
// Writes of one object taken by different nodes (or a write replayed after a restart, or
// uploaded by its copy's holder) are ordered by their stamps, which every upload stores with
// the object (StoredMeta): just before a commit the store is asked (Head) what it holds, and
// a write whose object already carries a larger stamp is dropped (hooks.superseded,
// shoal_uploads_superseded_total), one whose object carries its own stamp is durable already
// (hooks.durable, shoal_uploads_found_stored_total); neither is committed. The commit itself
// is conditional on what the Head saw (If-Match its ETag, or If-None-Match: * when there was
// none), so a write committed by another node between the two fails it (kPreconditionFailed,
// asked again after kWaitingRetry, not counted as a failure, parts kept) and the next look
// settles it. A store that ignores the condition (the s3rver test server) leaves that moment
// open. On a store that honours it (ObjectStore::HonoursIfAbsent: Azure, a local directory),
// a single-chunk object is put first on condition that the store holds none (If-None-Match:
// *: a new object costs one request, no Head); only when it holds one (kPreconditionFailed,
// shoal_uploads_over_existing_total) does the look come, then the put. A multipart write given whole (Add: replayed after a restart, a copy taken over, or
// the front door's multipart upload assembled on the node), which when replayed or taken over
// is often in the store already or replaced since, is also looked at (one Head) before its
// upload begins, so settling it sends no part.
// A failed commit starts the object again with a fresh upload. The object gets the record's
// metadata (ObjectMeta: given to BeginUpload, ResumeUpload or PutObject). A write whose record
// names an upload (store_upload_id: begun before a crash or a stop) resumes it: the store is
// asked which parts it already holds (MultipartUpload::FindStoredParts), and each part whose
// size (and on S3 ETag) matches the chunk is counted as put without being sent
// (MultipartUpload::ReusePart; shoal_upload_parts_reused_total); the others are sent. One the
// store no longer has (kNotFound when asked, or for a part) is dropped for a fresh upload.
// A new upload's id goes to hooks.begun before its first part. Thread-safe.
class Uploader {
 public:
  static constexpr std::chrono::milliseconds kWaitingRetry{500};
  Uploader(UploaderOptions options, UploadHooks hooks, NodeMetrics* metrics);
  // Finishes the parts in flight, then stops; pending writes stay journaled, and the uploads
  // of acknowledged ones stay open in the store, to be resumed after a restart.
  ~Uploader();

  // An acknowledged write (journaled), all of its chunks on disk.
  void Add(const engine::UploadRecord& record);
  // A write still in progress, opened once it has two chunks: its parts go up as the writer
  // stores them (AddPart), so the upload overlaps the write and a writer at the staged cap
  // is unblocked by its own upload. Nothing is committed before Seal (the write is
  // acknowledged); Cancel drops it (the writer failed; its parts are never committed).
  void Open(const engine::UploadRecord& partial);
  void AddPart(const std::string& id, uint64_t index);
  void Seal(const engine::UploadRecord& record);
  // Returns the bytes of it already reported through hooks.uploaded. A part already in flight
  // (a whole small object's one PUT included) still lands: see Gone.
  uint64_t Cancel(const std::string& id);
  // Whether nothing of write `id` is queued or in flight any more (never added, done, or
  // cancelled and its parts in flight finished).
  bool Gone(const std::string& id);
  // Acknowledged writes not yet durable, oldest first. With `changes`, also how many writes
  // have left this list since start (uploaded, replaced or cancelled), read under the same
  // lock. A write leaves the list only once the store has it (or it is cancelled), and counts
  // as it leaves: a write absent from this list was already counted (ListingCache relies on it).
  std::vector<UploadProgress> Pending(const std::string& prefix, uint64_t* changes = nullptr);
  // Sets max_concurrency while running (shoald's SIGHUP): more parts may go at once from now
  // (the pool grows to as many threads, and never shrinks), or fewer once those in flight
  // finish. An account's window at the old limit moves to the new one; a window cut by
  // throttling stays, under the new limit.
  void SetMaxConcurrency(int parts);
  int max_concurrency();
  // The smallest window of any account (max_concurrency before any upload).
  double window();
  // Every account uploaded to since start, by name.
  std::vector<AccountUploads> Accounts();

 private:
  struct Job;
  struct Lane;
  struct Task {
    enum class Kind { kBegin, kPart, kPutWhole, kComplete } kind;
    std::shared_ptr<Job> job;
    uint64_t part = 0;
  };
  // The one thread that picks tasks (window, back-off, FIFO) and hands them to pool_.
  void Schedule();
  // On a pool thread: runs `task`, then books its outcome.
  void RunTask(const Task& task, std::chrono::steady_clock::time_point started);
  // The next thing to do (false: none now); *wake is when a backed-off job becomes runnable.
  bool NextTaskLocked(Task* task, std::chrono::steady_clock::time_point* wake);
  // *throttles: the 429/503 answers the task's requests met; *reused: a part the store already
  // held (ReusePart), not sent.
  Status Run(const Task& task, uint64_t* throttles, uint64_t* bytes, bool* reused);
  // Takes up upload `id` of write `r` (of `parts` parts) again and asks the store which parts
  // it holds; null (after a log line) when the store no longer has it, for a fresh one.
  Result<std::unique_ptr<MultipartUpload>> Resume(const engine::UploadRecord& r, uint64_t parts, ObjectStore& store,
                                                  const std::string& key, const std::string& id);
  // What the store holds of `key` (one Head), just before a commit of write `r` (and before
  // the upload of an Added multipart write begins).
  struct Look {
    std::optional<ObjectInfo> settled_by;  // this write, or a newer one: settle with it (Settle)
    WriteCondition only_if;                // else: commit only over what was seen
  };
  static Result<Look> LookBeforeCommit(ObjectStore& store, const std::string& key, const engine::UploadRecord& r);
  Status Settle(const engine::UploadRecord& r, const ObjectInfo& held);
  // Books a task's outcome; returns an upload to abort (after unlocking) when one is abandoned.
  std::unique_ptr<MultipartUpload> FinishLocked(const Task& task, const Status& st, uint64_t throttles,
                                                uint64_t bytes, bool reused,
                                                std::chrono::steady_clock::time_point started);
  // The new job's account lane (created on first use).
  Lane* LaneLocked(const std::string& url);
  void WarnOverdueLocked();
  std::shared_ptr<Job> FindLocked(const std::string& id);
  // Removes a cancelled job once nothing of it is in flight; returns its upload to abort.
  std::unique_ptr<MultipartUpload> ReapLocked(Job& job);
  // Once nothing of it is in flight, a job whose upload the store lost starts again with a
  // fresh one; returns the lost upload to abort.
  std::unique_ptr<MultipartUpload> DropLostLocked(Job& job);

  const UploaderOptions options_;
  const UploadHooks hooks_;
  NodeMetrics* metrics_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;  // FIFO; guarded by mu_
  std::map<std::string, std::unique_ptr<Lane>> lanes_;  // by account; guarded by mu_; never erased
  int in_flight_ = 0;                      // guarded by mu_
  int max_concurrency_;                    // options_.max_concurrency, then SetMaxConcurrency; mu_
  uint64_t changes_ = 0;                   // writes that left Pending; guarded by mu_
  bool stopping_ = false;                  // guarded by mu_
  // max_concurrency_ threads (at least): in_flight_ (<= max_concurrency_) bounds the tasks handed to it,
  // so a task never waits in its queue for long. Its tasks never wait for each other.
  std::unique_ptr<WorkerPool> pool_;
  std::thread scheduler_;
};

}  // namespace shoal::node

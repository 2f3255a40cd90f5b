#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/object_meta.h"
#include "common/status.h"

namespace shoal::engine {

// What the node must remember across a crash about one object written through it.
struct UploadRecord {
  enum class State : uint8_t {
    kStaged,   // every chunk is on local disk (fsynced): acknowledged, upload pending
    kDurable,  // committed in the object store; `etag` is the store's
  };
  std::string id;          // the upload's id (also the local version of its chunks)
  std::string url;         // destination object
  uint64_t size = 0;
  uint64_t chunk_size = 0;
  State state = State::kStaged;
  std::string store_upload_id;  // S3 multipart UploadId once created (to resume, or abort)
  std::string etag;             // the store's ETag once durable
  int64_t created_unix_ms = 0;  // FIFO order and upload lag
  // When the write began on the node that took it, in microseconds since the epoch, strictly
  // increasing on that node: the order of writes of one object across the cluster (a write
  // begun after another was acknowledged has a larger one, with the nodes' clocks in step).
  // Copies carry their origin's. 0 in a record of an older version: created_unix_ms * 1000.
  uint64_t begun_unix_us = 0;
  // Replication: on the node that took the write, the nodes holding a copy; on such a copy,
  // the id of the node that took it (empty: written here). A copy is uploaded only if that
  // node is gone.
  std::vector<std::string> replicas;
  std::string origin;
  std::string origin_incarnation;  // on a copy: the origin's data directory when it sent it
  // The object's content headers and user metadata, validated when the write was taken; the
  // upload gives them to the store.
  ObjectMeta meta;

  // The write's stamp, which orders it among all writes of its object: begun_unix_us as 20
  // digits, '-', id. Larger is newer; equal is the same write.
  std::string Stamp() const;

  std::string Encode() const;  // one JSON object
  static Result<UploadRecord> Decode(const std::string& text);
};

// The write-back journal: an append-only log under DIR/journal/ (`log-<n>`, the highest n is
// the live one). Put and Remove append an entry (length, XXH3 checksum, the record as JSON or
// the id removed) and return once it is on disk: concurrent callers share one fdatasync (group
// commit), so a burst of small writes costs the disk one sync per batch, not two file creations,
// two fsyncs and a rename each. Entries acknowledged are always a prefix of the log: after
// kill -9 or a power cut, Open() replays every entry up to the first that is torn or fails its
// checksum (written and never synced, so never acknowledged) and drops the rest
// (torn_tail_bytes()), keeping that log aside as *.bad. When the log holds four times the
// live records' bytes (and at least 1 MiB), and at every Open, the live records are written
// to the next log (temp file, fsync, rename, fsync of the directory) and the older ones
// removed, so the log's size stays bounded by its live records. Record files of the older layout (one `<id>.json` per upload)
// are read at Open and folded into the log; one that fails to parse is reported and kept
// aside as *.bad, never silently dropped.
//
// Thread-safety: every method may be called from any thread. mu_ guards the log (its
// descriptor, the batch being filled, whether a sync runs); the caller that finds no sync
// running syncs for every entry appended so far, outside mu_, while others append and wait.
// records_mu_ guards the records in memory, which change only once their entry is synced, so
// Get, List and size see exactly what is durable and never wait for the disk.
class Journal {
 public:
  static Result<std::unique_ptr<Journal>> Open(const std::string& dir, bool sync = true);
  ~Journal();

  // Creates or replaces a record. Durable when it returns ok.
  Status Put(const UploadRecord& record);
  // Forgets a record. Durable when it returns ok.
  Status Remove(const std::string& id);
  // The record `id`, or kNotFound.
  Result<UploadRecord> Get(const std::string& id);
  // All records, oldest first (FIFO by created_unix_ms, then id).
  std::vector<UploadRecord> List();
  // How many records there are (on disk as in memory).
  size_t size();
  // Bytes of the live log on disk.
  uint64_t log_bytes();
  // Records Open() could not read (an older layout's files are kept as *.bad; an entry of the
  // log whose record does not parse is skipped).
  const std::vector<std::string>& damaged() const { return damaged_; }
  // Bytes at the end of the log Open() dropped: entries written and never synced before a crash
  // (that log is kept aside as log-<n>.bad).
  uint64_t torn_tail_bytes() const { return torn_tail_bytes_; }

 private:
  struct Batch;  // entries appended since the last sync began, and that sync's outcome
  Journal(std::string dir, bool sync) : dir_(std::move(dir)), sync_(sync) {}
  // Appends `op` ('P' with a record, 'R' with an id) and waits until it is synced.
  Status Append(char op, const std::string& body, const UploadRecord* record);
  // Writes every live record (and `pending`, entries appended and not yet synced) to log n+1
  // and makes it the live log. Requires mu_.
  Status RewriteLocked(const std::vector<std::pair<char, std::string>>& pending);
  // Applies a synced entry to the records in memory. Requires records_mu_ (or Open's sole use).
  void ApplyLocked(char op, const std::string& body, const UploadRecord* record);

  std::string dir_;
  bool sync_;
  std::mutex mu_;
  std::condition_variable synced_cv_;
  int fd_ = -1;                    // the live log, written at log_bytes_; guarded by mu_
  uint64_t log_index_ = 0;         // its n; guarded by mu_
  uint64_t log_bytes_ = 0;         // its size; guarded by mu_
  bool syncing_ = false;           // a caller is syncing; guarded by mu_
  // The next sync writes the log anew (RewriteLocked) instead of syncing it: a write or sync
  // failed (its tail is in doubt), or it outgrew its live records. Guarded by mu_.
  bool rewrite_ = false;
  std::shared_ptr<Batch> batch_;   // guarded by mu_
  std::mutex records_mu_;
  struct Live {
    UploadRecord record;
    std::string text;  // its entry's JSON
  };
  std::map<std::string, Live> records_;  // guarded by records_mu_
  uint64_t live_bytes_ = 0;                      // their entries' bytes; guarded by records_mu_
  std::vector<std::string> damaged_;
  uint64_t torn_tail_bytes_ = 0;
};

}  // namespace shoal::engine

#pragma once

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

// The write-back journal: one small file per upload under DIR/journal/, each replaced
// atomically (temp file, fsync, rename, fsync of the directory), so after kill -9 or a power
// cut at any moment every record is either its old or its new version (the directory, when
// Open makes it, is fsynced into its parent first). Open() loads them all (records
// that fail to parse are reported, kept aside as *.bad, never silently dropped). Thread-safe:
// Put and Remove are serialized; Get, List and size never wait for one's fsync.
class Journal {
 public:
  static Result<std::unique_ptr<Journal>> Open(const std::string& dir, bool sync = true);

  // Creates or replaces a record. Durable when it returns ok.
  Status Put(const UploadRecord& record);
  Status Remove(const std::string& id);
  // The record `id`, or kNotFound.
  Result<UploadRecord> Get(const std::string& id);
  // All records, oldest first (FIFO by created_unix_ms, then id).
  std::vector<UploadRecord> List();
  // How many records there are (on disk as in memory).
  size_t size();
  // Records Open() could not read (their files are kept as *.bad).
  const std::vector<std::string>& damaged() const { return damaged_; }

 private:
  Journal(std::string dir, bool sync) : dir_(std::move(dir)), sync_(sync) {}
  std::string PathOf(const std::string& id) const { return dir_ + "/" + id + ".json"; }

  std::string dir_;
  bool sync_;
  // write_mu_ serializes changes to the files (held across their fsyncs, except a removal's
  // directory sync, which is best effort); mu_ guards the
  // records in memory, so readers never wait for a disk: a record is seen once it is durable.
  std::mutex write_mu_;
  std::mutex mu_;
  std::map<std::string, UploadRecord> records_;  // guarded by mu_
  std::vector<std::string> damaged_;
};

}  // namespace shoal::engine

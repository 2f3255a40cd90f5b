#pragma once

// What the front door stages on the node's disk before an object is committed: S3's multipart
// uploads and Azure Blob's uncommitted blocks. Each upload is a directory under
// DATA_DIR/door-uploads/ holding what it is for and its parts (one file each, with its size and
// MD5). CompleteMultipartUpload (or Put Block List) streams the parts, in order, into one
// write-back write (which door_assembly.h may have begun as they arrived); the object is
// committed whole, never part by part. A part is not fsynced:
// a node that dies loses its open uploads' parts (the client's Complete then fails with
// NoSuchUpload, its Put Block List with InvalidBlockList, and it uploads again), never a
// committed object.
//
// An Azure blob's blocks live in a "block area", one per blob (its id derives from the
// door's container name and the blob's name), made by its first Put Block and removed when
// the blob is overwritten or deleted. Put Block List replaces the area's blocks with the
// list it committed (ids and sizes: Get Block List answers it, and a later list may name
// them again, read back from the blob). Find and List never answer block areas.
//
// Thread-safety: all methods may be called from any thread at once. Parts of one upload may be
// written concurrently (each to a file of its own, renamed into place when whole); Complete,
// Abort and a part being written race only as S3's do (the last part written before Complete
// lists them is the one used).

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/object_meta.h"
#include "common/status.h"

namespace shoal::node {

struct StagedUpload {
  std::string id;
  std::string bucket;  // the door's name
  std::string key;
  std::time_t created = 0;
  ObjectMeta meta;  // given to CreateMultipartUpload; the object gets it at Complete
  bool blocks = false;  // an Azure blob's block area, not an S3 upload
};

struct StagedPart {
  uint32_t number = 0;   // S3's part number; 0 for an Azure block
  std::string block_id;  // an Azure block's id (its bytes, base64-decoded); "" for an S3 part
  uint64_t size = 0;
  std::string etag;  // hex MD5 of the part, as S3 names a part
  std::time_t modified = 0;
};

class DoorUploads {
 public:
  // Uploads live in `dir` (created if missing; uploads found there are kept).
  static Result<std::unique_ptr<DoorUploads>> Open(const std::string& dir);

  Result<StagedUpload> Create(const std::string& bucket, const std::string& key, const ObjectMeta& meta = {});
  // kNotFound (NoSuchUpload) unless `id` is an upload of bucket/key.
  Result<StagedUpload> Find(const std::string& id, const std::string& bucket, const std::string& key) const;
  // Uploads of `bucket` (all keys), oldest first.
  std::vector<StagedUpload> List(const std::string& bucket) const;

  // A part being written: Append its bytes, then Finish (or drop it: nothing is kept).
  class PartWriter {
   public:
    virtual ~PartWriter() = default;
    virtual Status Append(std::string_view data) = 0;
    virtual Result<StagedPart> Finish() = 0;
  };
  Result<std::unique_ptr<PartWriter>> WritePart(const StagedUpload& upload, uint32_t number);
  // The parts written so far, by number.
  Result<std::vector<StagedPart>> Parts(const StagedUpload& upload) const;
  // Feeds part `number`'s bytes to `sink` in pieces of at most `piece` bytes.
  Status ReadPart(const StagedUpload& upload, uint32_t number, size_t piece,
                  const std::function<Status(std::string_view)>& sink) const;
  // Removes the upload and its parts (Abort, or after Complete).
  Status Remove(const StagedUpload& upload);

  // ---- Azure blocks ----
  // The block area of blob `key` in container `bucket`: made when `create` (Put Block), else
  // kNotFound if the blob has none.
  Result<StagedUpload> BlockArea(const std::string& bucket, const std::string& key, bool create);
  // A block being staged (at most 64 bytes of id); it replaces a staged block of the same id.
  Result<std::unique_ptr<PartWriter>> WriteBlock(const StagedUpload& area, std::string_view block_id);
  // The blocks staged and not committed, by id.
  Result<std::vector<StagedPart>> Blocks(const StagedUpload& area) const;
  Status ReadBlock(const StagedUpload& area, std::string_view block_id, size_t piece,
                   const std::function<Status(std::string_view)>& sink) const;
  // The blocks Put Block List committed last, in the blob's order (empty when none).
  Result<std::vector<StagedPart>> Committed(const StagedUpload& area) const;
  // After a Put Block List: records `committed` and removes every staged block.
  Status SetCommitted(const StagedUpload& area, const std::vector<StagedPart>& committed);

 private:
  explicit DoorUploads(std::string dir) : dir_(std::move(dir)) {}
  std::string DirOf(const std::string& id) const { return dir_ + "/" + id; }
  Result<std::vector<StagedPart>> Staged(const StagedUpload& upload, bool blocks) const;
  Status ReadFile(const StagedUpload& upload, const std::string& name, size_t piece,
                  const std::function<Status(std::string_view)>& sink) const;
  const std::string dir_;
};

}  // namespace shoal::node

#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "store/object_store.h"

namespace shoal {

// How a large object moves: in parts of part_size, `concurrency` at a time. Memory in use is
// at most concurrency x part_size (+ one part for streams), whatever the object size.
struct TransferOptions {
  uint64_t part_size = 8ull << 20;
  int concurrency = 8;
  // Bytes moved so far, added to from worker threads; may be null.
  std::atomic<uint64_t>* progress = nullptr;
};

// Sequential bytes from somewhere (stdin, a pipe). Returns 0 at the end.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual Result<size_t> Read(char* buf, size_t len) = 0;
};

// A ByteSource over a file descriptor (not closed).
class FdSource final : public ByteSource {
 public:
  explicit FdSource(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  Result<size_t> Read(char* buf, size_t len) override;

 private:
  int fd_;
  std::string name_;
};

// The part size for an object of `size` bytes: opts.part_size, raised so the object fits the
// store's part count and kept within its part-size limits.
uint64_t ChoosePartSize(uint64_t size, uint64_t wanted, const PartLimits& limits);

// Copies `src_info` (from src.Head or a listing) to dst/dst_key: ranged reads of the source
// pinned to its ETag, in parallel, each written as one part of a multipart upload; objects no
// larger than one part go in a single request. On failure the upload is aborted, so nothing
// (no partial object) appears at dst_key.
Result<ObjectInfo> CopyObject(ObjectStore& src, const ObjectInfo& src_info, ObjectStore& dst,
                              const std::string& dst_key, const TransferOptions& opts);

// Uploads everything `source` yields to dst/key (size unknown in advance).
Result<ObjectInfo> UploadStream(ByteSource& source, ObjectStore& dst, const std::string& key,
                                const TransferOptions& opts);

// Reads the whole object to `sink`, in order, fetching up to `concurrency` parts ahead.
Status DownloadStream(ObjectStore& src, const ObjectInfo& info, const ByteSink& sink,
                      const TransferOptions& opts);

}  // namespace shoal

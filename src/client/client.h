#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/cache_store.h"
#include "common/status.h"
#include "store/object_store.h"
#include "store/transfer.h"

namespace shoal::client {

// Files over objects, for the mount (`shoal mount`) and the Python binding: an object read at
// any offset with read-ahead, and an object written (at any offset, see Writer) that appears
// whole when the writer closes it. With a cache node, reads go through it and writes are write-back
// (acknowledged once on the node); without one, straight to the object store.

struct ReaderOptions {
  uint64_t block_size = 8ull << 20;  // bytes fetched per request (a node's chunk)
  int readahead = 4;                 // blocks fetched ahead of a sequential reader
  bool huge_pages = false;           // block buffers on transparent huge pages (the mount's:
                                     // the kernel pins them for every reply)
  // The block size in effect: block_size, or the default when it is 0.
  uint64_t Block() const { return block_size == 0 ? ReaderOptions{}.block_size : block_size; }
};

// Bytes of a fetched block, where they sit: `data` stays valid while `hold` is kept.
struct Piece {
  std::shared_ptr<const std::string> hold;
  const char* data = nullptr;
  size_t size = 0;
};

// One version of an object (its ETag), read at any offset. Thread-safe: reads at several
// offsets may run at once. Reads that follow each other start fetching the next blocks.
class Reader {
 public:
  // `still`: asked when the store answers that the version read changed; the same bytes under
  // a new ETag (a write through the node that was uploaded meanwhile), else kPreconditionFailed.
  // Asked at most 3 times per read.
  using Revalidate = std::function<Result<ObjectInfo>(const ObjectInfo& pinned)>;
  Reader(std::shared_ptr<ObjectStore> store, std::string key, ObjectInfo info, ReaderOptions options,
         Revalidate still = nullptr);
  ~Reader();
  const ObjectInfo& info() const { return info_; }
  // Up to `n` bytes from `offset` into `dst` (fewer only at the end); 0 at or past the end.
  // kPreconditionFailed when the object changed in the store since it was opened.
  Result<size_t> ReadAt(uint64_t offset, char* dst, size_t n);
  // The same bytes without a copy: the pieces of the blocks that hold them, in order.
  Result<std::vector<Piece>> Pieces(uint64_t offset, size_t n);
  // The first block's bytes, read already (Client::OpenReadFirst): min(block_size, size) bytes
  // of the version this reader reads.
  void Prime(std::string first_block);

 private:
  using Block = std::shared_future<Result<std::shared_ptr<const std::string>>>;
  struct BufferPool;
  Block Fetch(uint64_t index);  // mu_ held
  std::shared_ptr<ObjectStore> store_;
  std::string key_;
  ObjectInfo info_;  // etag guarded by mu_ (a revalidation may change it)
  ReaderOptions options_;
  Revalidate still_;
  // Block buffers are reused: a fresh 8 MiB buffer per block costs page faults and zeroing
  // (about a tenth of a sequential read's CPU). Shared with the blocks, which may outlive us.
  std::shared_ptr<BufferPool> pool_;
  std::mutex mu_;
  std::map<uint64_t, std::pair<Block, uint64_t>> blocks_;  // index -> fetch, last use
  uint64_t clock_ = 0;
  uint64_t last_index_ = UINT64_MAX;  // block of the latest read
};

// Bytes handed from a writer's thread to the upload's thread, at most `cap` queued.
class BytePipe final : public ByteSource {
 public:
  explicit BytePipe(size_t cap) : cap_(cap) {}
  Result<size_t> Read(char* buf, size_t len) override;
  // False when the reading side stopped (the upload failed).
  bool Push(std::string data);
  void Finish();     // no more bytes: Read returns 0 once the queue is empty
  void StopReading();  // the upload is over: Push fails from now on
  void Abort();        // Read fails from now on (the upload must not complete)

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  size_t queued_ = 0, front_pos_ = 0, cap_;
  bool finished_ = false, stopped_ = false, aborted_ = false;
};

// An object being written. Nothing is visible at its URL until Close succeeds, and then all of
// it is: a reader never sees part of it. Bytes written at the end stream to the upload as they
// come. A rewritable writer (Client::OpenWrite's default) also keeps every byte in a spool file
// (an unlinked temporary file in $TMPDIR, else /tmp), so it may write anywhere and be truncated,
// as zipfile, np.savez and tarfile do when they patch headers: the first such write abandons
// the streamed upload, and Close uploads the spool instead. It also survives its node going
// away: a streamed upload that fails as unavailable (nothing of it acknowledged) is dropped and
// Close sends the spool, again if refused as unavailable (5 times over about 6 s), to the
// node current then (CacheConfig::entry). Not thread-safe (one writer).
class Writer {
 public:
  ~Writer();  // unclosed: aborted, nothing appears
  // Appends: WriteAt(size(), ...).
  Status Write(const char* data, size_t n);
  // `n` bytes at `offset`: before the end they replace what is there; past it the bytes between
  // read as zeros. kInvalidArgument unless the writer is rewritable or offset is size().
  Status WriteAt(uint64_t offset, const char* data, size_t n);
  // The object's size becomes `size`: cut, or extended with zeros. Rewritable writers only.
  Status Truncate(uint64_t size);
  // The object is complete: with a cache node, once it is on the node's disk and journaled (and
  // on its copies' nodes in a cluster); without one, once it is in the store.
  Result<ObjectInfo> Close();
  void Abort();
  uint64_t size() const { return size_; }
  bool closed() const { return closed_; }

 private:
  friend class Client;
  Writer() = default;
  // `rewritable`: with a spool file (kIOError when it cannot be made).
  Status Start(std::function<Result<ObjectInfo>(ByteSource&)> upload, bool rewritable);
  Status SendBuffer();
  // Leaves streaming: the streamed upload is abandoned (nothing of it appears); Close uploads
  // the spool.
  void StopStreaming();
  std::function<Result<ObjectInfo>(ByteSource&)> upload_;
  int spool_ = -1;        // the spool file, when rewritable
  bool streaming_ = true;  // every byte so far went to the upload in order
  std::unique_ptr<BytePipe> pipe_;
  std::future<Result<ObjectInfo>> result_;  // the upload, on a thread of its own (std::async)
  std::string buffer_;
  uint64_t size_ = 0;
  bool closed_ = false;
  Status failed_;
};

struct ClientOptions {
  std::string cache;        // HOST:PORT or unix:PATH of a shoald ("" : $SHOAL_CACHE, else none)
  std::string token_file;   // "" : $SHOAL_TOKEN_FILE, else none
  std::string tls_ca;       // an https:// cache's CA file; "" : $SHOAL_TLS_CA, else the system's
  ReaderOptions reader;
  TransferOptions transfer;  // writes straight to the store
};

// What is known of one object: its size and ETag, and with a cache node whether it is durable.
struct FileInfo {
  ObjectInfo info;          // key: the object's key in its bucket
  std::string state;        // "local", "durable"; "" without a cache node
  std::string written_as;   // durable: the ETag it had while local on the node, if written through it
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Open(const ClientOptions& options);
  // With a node already resolved (CacheConfig::Resolve; endpoint empty: none); options.cache and
  // options.token_file are not read.
  static std::unique_ptr<Client> Open(const ClientOptions& options, const CacheConfig& cache);
  const CacheConfig& cache() const { return cache_; }
  bool has_cache() const { return !cache_.endpoint.empty(); }

  Result<FileInfo> Stat(const std::string& url);
  // Stat, for a caller that reads the object from its start next (OpenRead): a node that must
  // ask the store about it brings the first chunk with the answer (ObjectStore::HeadToRead).
  Result<FileInfo> StatToRead(const std::string& url);
  // One page of what is under `prefix_url` (delimiter "/" unless recursive): with a cache
  // node, the node's listing (no store credentials needed here; the node's writes not yet
  // uploaded merged in, with the version it serves them as); without, the store's.
  // `allow_incomplete`: through a node whose store cannot be reached, the writes the cluster
  // holds, with ListPage::incomplete saying so (ListOptions::allow_incomplete).
  Result<shoal::ListPage> List(const std::string& prefix_url, bool recursive, const std::string& continuation,
                               uint32_t max_keys = 1000, bool allow_incomplete = false);
  // Every page of List, in key order (and the common prefixes, when not recursive). With
  // `incomplete`, a listing without the store is taken (List's allow_incomplete) and
  // *incomplete says why ("" when the store was listed).
  Result<std::vector<ObjectInfo>> ListAll(const std::string& prefix_url, bool recursive,
                                          std::vector<std::string>* prefixes = nullptr,
                                          std::string* incomplete = nullptr);
  Status Delete(const std::string& url);
  Result<std::unique_ptr<Reader>> OpenRead(const std::string& url);
  Result<std::unique_ptr<Reader>> OpenRead(const std::string& url, const ObjectInfo& info);
  // The version of `url` current now, opened with its first `first` bytes (at most a block)
  // read in the same request: a small file costs one GET, and no HEAD before it. Through a
  // cache node only: null without one, or when the node does not name the version (then Stat
  // and OpenRead). kNotFound for no such object; kInvalidArgument for an empty one (the range
  // starts at its end).
  Result<std::unique_ptr<Reader>> OpenReadFirst(const std::string& url, uint64_t first);
  // A new version of `url`, rewritable (see Writer) unless `rewritable` is false (front to back
  // only, no spool file).
  Result<std::unique_ptr<Writer>> OpenWrite(const std::string& url, bool rewritable = true);
  // A rewritable writer of `url` that starts with the object's current bytes (none when it does
  // not exist), positioned at its end: appends, truncation and rewrites publish a new whole
  // object at Close. The current bytes are read at once (through the node, with one).
  Result<std::unique_ptr<Writer>> OpenAppend(const std::string& url);
  // Waits until everything under `prefix_url` written through the cache node is in the store
  // (`timeout_s` 0: no limit). Immediate without a cache node (writes are in the store at close).
  Status Flush(const std::string& prefix_url, int timeout_s = 0);
  // The store `url`'s bucket is read from: through the cache node, or direct.
  Result<std::shared_ptr<ObjectStore>> ReadStore(const ObjectUrl& url);
  // The store itself (everything without a cache node; needs the store's credentials).
  Result<std::shared_ptr<ObjectStore>> DirectStore(const ObjectUrl& url);

 private:
  explicit Client(ClientOptions options) : options_(std::move(options)) {}
  Result<FileInfo> StatFor(const std::string& url, bool to_read);
  // Asked by a reader of `url` whose version the node no longer serves (Reader::Revalidate).
  Reader::Revalidate StillTheSame(const std::string& url);
  ClientOptions options_;
  CacheConfig cache_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<ObjectStore>> direct_, cached_;  // by bucket URL
};

}  // namespace shoal::client

#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_sink.h"
#include "common/object_meta.h"
#include "common/status.h"
#include "net/request_stats.h"

namespace shoal {

// Where an object lives: `az://container/key`, `s3://bucket/key` or `file:///dir/key`.
// For file URLs the bucket is empty and the key is the path below the root ("/" by default).
// An Azure URL may name its storage account: `az://container@ACCOUNT/key` (ABFS's order);
// without one it is the default account of the environment (docs/object-store.md). The
// account stays part of `bucket` ("container@ACCOUNT"), so a bucket names one store wherever
// it is passed; container() and account() split it.
struct ObjectUrl {
  std::string scheme;  // "az", "s3" or "file"
  std::string bucket;  // container (with "@ACCOUNT" when named) or bucket; empty for file
  std::string key;     // may be empty (a whole bucket) or a prefix

  // Parses a URL; kInvalidArgument with a hint when it is none of the three forms.
  static Result<ObjectUrl> Parse(std::string_view url);
  // True when `text` looks like a URL rather than a local path.
  static bool IsUrl(std::string_view text);
  std::string ToString() const;
  // The URL of `key` in the same bucket.
  ObjectUrl WithKey(std::string k) const { return ObjectUrl{scheme, bucket, std::move(k)}; }
  // The container or bucket without the account; the account ("" for the default).
  std::string container() const;
  std::string account() const;
  // Who the store's load is booked to (upload windows, metrics): "az" for the default Azure
  // account, "az@ACCOUNT" for a named one, "s3", "file".
  std::string AccountLabel() const;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;            // without quotes
  std::time_t last_modified = 0;
  // The object's content headers and user metadata. Head fills it (from the same answer: no
  // extra request on Azure or S3, extended attributes of the open file on the local
  // directory); List, PutObject and Complete leave it null, so pages and catalogs of many
  // objects stay small. Shared and immutable: copying an ObjectInfo never copies it.
  std::shared_ptr<const ObjectMeta> meta = nullptr;
  // The stamp of the cache node's write this version is (kWriteStampMeta, moved out of meta
  // by Head); "" for an object no node uploaded.
  std::string write_stamp = {};
};

struct ReadOptions {
  static constexpr uint64_t kToEnd = UINT64_MAX;
  uint64_t offset = 0;
  uint64_t length = kToEnd;    // bytes from offset; kToEnd reads to the end
  std::string if_match;        // when set, kPreconditionFailed unless the ETag is this
  // When set, kPreconditionFailed unless the object is this many bytes (as the store's answer
  // says: Content-Range's total, or the file's size), so a reader that named a wrong size for
  // a version never gets a part of it as if it were the whole.
  static constexpr uint64_t kAnySize = UINT64_MAX;
  uint64_t if_size = kAnySize;
  // When set, what the store's answer said of the object, as Head would (its size, kAnySize
  // when not said; ETag, last-modified, metadata and write stamp): one GET of an object's first
  // bytes stands for a HEAD and a GET. Left with an empty ETag by a store that does not say.
  // The cache node's client fills only the size and ETag.
  ObjectInfo* answered = nullptr;
};

struct ListOptions {
  std::string prefix;             // keys that start with this (plain string prefix)
  std::string delimiter;          // "/" groups keys into common prefixes; empty lists all keys
  std::string continuation;       // from the previous page's next_continuation
  uint32_t max_keys = 1000;
  // Through a cache node only: when the object store cannot be reached, answer with what the
  // cluster holds that is not yet uploaded (ListPage::incomplete says so) instead of failing.
  // For a person looking (`shoal ls`); never for a copy or delete that must see every key.
  bool allow_incomplete = false;
};

struct ListPage {
  std::vector<ObjectInfo> objects;     // in key order
  std::vector<std::string> prefixes;   // common prefixes when a delimiter was given
  std::string next_continuation;       // empty on the last page
  std::string incomplete;              // set (why) when objects the store holds may be missing
};

// A condition on a write that replaces an object (HTTP's If-Match / If-None-Match: *): the
// write fails with kPreconditionFailed, changing nothing, when the object is not as it says,
// so a writer that looked at the object first commits only over what it saw. Empty: none.
struct WriteCondition {
  std::string if_match = {};  // the object's ETag (without quotes) must be this
  bool if_absent = false;  // there must be no object
  bool empty() const { return if_match.empty() && !if_absent; }
};

// One object being written in parts. Parts may be written concurrently, in any order, from any
// thread; part `index` holds bytes [index * part_size, ...). Nothing is visible in the store
// until Complete succeeds; Abort (or destruction without Complete) discards every part.
class MultipartUpload {
 public:
  virtual ~MultipartUpload() = default;
  // Thread-safe. `offset` is where the part starts in the object. `data` must stay valid for
  // the call. Retries transient failures itself.
  virtual Status PutPart(uint32_t index, uint64_t offset, std::string_view data) = 0;
  // Commits parts [0, num_parts) as one object, atomically; only if `only_if` holds (else
  // kPreconditionFailed, nothing committed, the parts kept for another attempt).
  virtual Result<ObjectInfo> Complete(uint32_t num_parts, const WriteCondition& only_if = {}) = 0;
  // Best effort; never throws or fails loudly.
  virtual void Abort() = 0;
  // The store's name for this upload, to journal: S3's UploadId, Azure's prefix of its block
  // ids; "" when it cannot be resumed (a local file). ObjectStore::ResumeUpload takes it up.
  virtual std::string id() const { return ""; }
  // For an upload taken up again (ObjectStore::ResumeUpload): asks the store which of its
  // parts it already holds (S3 ListParts; Azure Get Block List of the blob's uncommitted
  // blocks), so that ReusePart spares sending them again. Returns how many it holds.
  // kNotFound when the store no longer has the upload (S3's NoSuchUpload); any other error
  // leaves nothing found, to ask again. A store that does not answer the question (one
  // without ListParts) holds none as far as this upload knows: every part is sent again.
  // Call it before any PutPart. 0 for an upload that cannot be resumed.
  virtual Result<uint32_t> FindStoredParts() { return 0u; }
  // Whether the store holds part `index` with exactly `data`, as FindStoredParts found it: the
  // same size and, on S3, an ETag equal to the MD5 of `data` (what S3 names an unencrypted
  // part; a part encrypted with SSE-KMS or SSE-C never matches and is sent again); Azure keeps
  // no digest of an uncommitted block, so there its size alone. When true the part counts as
  // put (Complete names it) and nothing is sent; when false (a part the store lacks or holds
  // with other bytes) the caller sends it with PutPart, which replaces the store's. Only the
  // first call for an index can be true. Thread-safe.
  virtual bool ReusePart(uint32_t /*index*/, std::string_view /*data*/) { return false; }
  // Leaves the upload open in the store when destroyed instead of discarding it: a node
  // stopping whose journal names it, to resume after the restart. Thread-safe.
  virtual void Keep() {}
  // True when PutPart takes any byte range at any offset, not only whole parts (a file):
  // then a copy can stream long ranges straight into place instead of buffering parts.
  virtual bool positional() const { return false; }
  // A hint that the object will be `size` bytes, so a file can allocate its space up front
  // (fewer, larger extents; no allocation under dirty-page pressure). Best effort.
  virtual void Reserve(uint64_t /*size*/) {}
};

// Limits a backend puts on multipart uploads.
struct PartLimits {
  uint64_t min_part_size = 1;   // every part but the last is at least this (S3: 5 MiB)
  uint64_t max_part_size = UINT64_MAX;
  uint32_t max_parts = UINT32_MAX;
};

// Request and byte counts of one store (the net layer counts them as its requests go out).
using StoreStats = net::RequestStats;

// One bucket (container, directory) of an object store. Implementations: local directory,
// Azure Blob, S3. All methods are thread-safe and retry transient failures (429, 5xx,
// connection reset, timeout) with bounded exponential back-off and jitter before giving up
// with kUnavailable. Keys are validated before any I/O: kInvalidArgument for an empty key,
// a NUL, or (file) a key that would escape the root.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // "az://container" etc., for messages.
  virtual std::string Describe() const = 0;

  // Streams bytes of `key` to `sink`. kNotFound if absent; kPreconditionFailed when
  // opts.if_match is set and differs. A read interrupted mid-body resumes where it stopped
  // (pinned to the ETag first seen), so the sink sees every byte exactly once. A range that
  // starts past the end (any range of an empty object on Azure and S3) is kInvalidArgument.
  Status Get(const std::string& key, const ReadOptions& opts, const ByteSink& sink);
  // Size, ETag, last-modified and metadata (a content type of kDefaultContentType when the
  // writer set none; kWriteStampMeta taken out into write_stamp); kNotFound if absent. Reports what the store holds: names written by
  // others that ObjectMeta::Validate would refuse (an S3 `my-key`) come back lower-cased.
  Result<ObjectInfo> Head(const std::string& key);
  // Head, for a caller that reads the object from its start next (`shoal cat`, a download): a
  // cache node that must ask the store about the object then fetches its first chunk with the
  // answer, one request to the store rather than a HEAD and a GET. The same as Head elsewhere.
  Result<ObjectInfo> HeadToRead(const std::string& key);
  // One page of keys under opts.prefix.
  Result<ListPage> List(const ListOptions& opts);
  // Deletes `key`; ok if it did not exist.
  Status Delete(const std::string& key);
  // Writes a whole object in one request (small objects), with `meta` (Azure: its x-ms-blob-*
  // and x-ms-meta-* headers; S3: its content headers and x-amz-meta-*; the local directory:
  // user.shoal.* extended attributes, see local_store.h). Atomic, bytes and metadata together.
  // kInvalidArgument, before any I/O, when `meta` fails ObjectMeta::Validate;
  // kPreconditionFailed, writing nothing, when `only_if` does not hold.
  Result<ObjectInfo> PutObject(const std::string& key, std::string_view data,
                               const ObjectMeta& meta = {}, const WriteCondition& only_if = {});
  // Starts a multipart upload (large objects); the object gets `meta` when it completes.
  // kInvalidArgument, before any I/O, when `meta` fails ObjectMeta::Validate.
  Result<std::unique_ptr<MultipartUpload>> BeginUpload(const std::string& key,
                                                       const ObjectMeta& meta = {});
  // Takes up again upload `id` of `key` (MultipartUpload::id) that a process began before it
  // crashed or stopped. Parts put again replace those it had; MultipartUpload::FindStoredParts
  // and ReusePart keep those the store already holds from being sent again. Complete commits
  // and closes it, so the store is left with no open upload; the object gets `meta`, as
  // BeginUpload's would. Sends nothing: an upload the store no longer has fails at
  // FindStoredParts, its first PutPart or Complete with kNotFound. kNotFound at once when the
  // store cannot resume uploads (a local directory): begin a new one.
  Result<std::unique_ptr<MultipartUpload>> ResumeUpload(const std::string& key, const std::string& id,
                                                        const ObjectMeta& meta = {});
  // Creates the bucket/container if it does not exist (for tests, `shoal mb`).
  Status CreateBucket();

  virtual PartLimits Limits() const { return PartLimits{}; }
  // Whether a write with WriteCondition::if_absent is refused (kPreconditionFailed) whenever
  // the object exists: Azure and the local directory. Not assumed of S3-compatible servers
  // (AWS honours If-None-Match: * on PutObject since 2024; s3rver ignores it), so a caller
  // that must not replace an object looks first there.
  virtual bool HonoursIfAbsent() const { return false; }
  StoreStats& stats() { return stats_; }
  // kInvalidArgument when `key` can never be stored here (empty, a NUL; for the local
  // directory also `..` and the like, which would escape its root). No I/O. Every operation
  // checks it; callers that accept a write before storing it (a cache node) check it first.
  virtual Status ValidateKey(const std::string& key) const;
  // ValidateKey, and `meta` against ObjectMeta::Validate: what PutObject and BeginUpload check
  // before any I/O, for callers that accept a write before storing it.
  Status ValidateWrite(const std::string& key, const ObjectMeta& meta) const;

 protected:
  virtual Status GetImpl(const std::string& key, const ReadOptions& opts, const ByteSink& sink) = 0;
  virtual Result<ObjectInfo> HeadImpl(const std::string& key) = 0;
  virtual Result<ObjectInfo> HeadToReadImpl(const std::string& key) { return HeadImpl(key); }
  virtual Result<ListPage> ListImpl(const ListOptions& opts) = 0;
  virtual Status DeleteImpl(const std::string& key) = 0;
  virtual Result<ObjectInfo> PutObjectImpl(const std::string& key, std::string_view data,
                                           const ObjectMeta& meta, const WriteCondition& only_if) = 0;
  virtual Result<std::unique_ptr<MultipartUpload>> BeginUploadImpl(const std::string& key,
                                                                   const ObjectMeta& meta) = 0;
  virtual Result<std::unique_ptr<MultipartUpload>> ResumeUploadImpl(const std::string& key, const std::string& id,
                                                                    const ObjectMeta& meta);
  virtual Status CreateBucketImpl() = 0;

  StoreStats stats_;
};

// Every object under `prefix` (all pages), in key order.
Result<std::vector<ObjectInfo>> ListAll(ObjectStore& store, const std::string& prefix);

// Opens the store that holds `url`'s bucket; credentials come from the environment as the
// Azure and AWS tools take them (see azure_store.h, s3_store.h).
Result<std::shared_ptr<ObjectStore>> OpenObjectStore(const ObjectUrl& url);

}  // namespace shoal

#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/chunk_store.h"
#include "engine/journal.h"
#include "net/node_protocol.h"
#include "node/metrics.h"
#include "node/options.h"
#include "store/object_store.h"

namespace shoal::node {

// The chunk version of a write taken by a node (its chunks' key until the store names it).
inline std::string LocalVersion(const std::string& id) { return std::string(proto::kLocalVersionPrefix) + id; }
inline uint64_t ChunkCount(uint64_t size, uint64_t chunk) { return (size + chunk - 1) / chunk; }
// The length of chunk `index` (< ChunkCount) of an object of `size` bytes.
inline uint64_t ChunkLength(uint64_t size, uint64_t chunk, uint64_t index) {
  return std::min(chunk, size - index * chunk);
}
// The keys of the first `count` chunks of write `id` of `url`, and of all of write `r`'s.
std::vector<engine::ChunkKey> WriteChunkKeys(const std::string& url, const std::string& id, uint64_t count);
inline std::vector<engine::ChunkKey> WriteChunkKeys(const engine::UploadRecord& r) {
  return WriteChunkKeys(r.url, r.id, ChunkCount(r.size, r.chunk_size));
}

// What the node knows of objects: an ObjectStore per bucket, the size and ETag of each object
// it has looked at, and that a name is not an object (the store answered 404: a directory's
// name, looked up by a mount), both fresh for --metadata-ttl (asked on every open with
// --validate); the objects written here and not yet in the store (trusted without a TTL: only
// this node has them; one replayed or taken over is compared with the store once first,
// SetLocal), and which local version an uploaded write's chunks are cached under (so
// reading it back after its upload costs no fetch). A write or delete through the cluster
// replaces what is known of its name (SetLocal, Fresh, Invalidate: the object's home hears of
// every write, WriteDirectory). At most `max_entries` names are remembered, written ones aside;
// past that, expired ones go first, then any. Expired ones are also swept out each time the
// names kept have doubled (from kFirstSweep), so a node taking many writes holds about what
// --metadata-ttl keeps, not every name it ever saw.
//
// Thread-safe. One mutex guards the metadata, the aliases and the asks under way, another the
// stores; neither is held while the store is asked (Stat's HEAD or GET), and nothing outside
// the class is called under them.
class ObjectCatalog {
 public:
  static constexpr size_t kMaxEntries = 1 << 20;  // about 300 MiB at most of names and ETags
  ObjectCatalog(const NodeOptions& options, NodeMetrics* metrics, size_t max_entries = kMaxEntries)
      : options_(options), metrics_(metrics), max_entries_(max_entries) {}
  ~ObjectCatalog();
  ObjectCatalog(const ObjectCatalog&) = delete;
  ObjectCatalog& operator=(const ObjectCatalog&) = delete;

  // Keeps the aliases (AddAlias, SetDurable) in the file `path` too, one JSON line each,
  // appended as they are made and not synced (one lost costs a fetch, never data), so that
  // after a restart an uploaded write's chunks, and a kept copy's, are still found under the
  // store's ETag. Reads what the file holds first (a torn or unreadable line is skipped),
  // keeps the newest kMaxAliases and rewrites the file with them (again whenever it holds
  // twice that many lines). Call once, before any alias is added. An error (the file cannot
  // be written) leaves the aliases in memory only.
  Status PersistAliases(const std::string& path);

  // The store `url` lives in, opened once per scheme and bucket.
  Result<std::shared_ptr<ObjectStore>> StoreFor(const ObjectUrl& url);
  Result<std::shared_ptr<ObjectStore>> StoreFor(const std::string& url);
  // A reader about to read an object's first chunk: when Stat must ask the store about a name
  // it has not seen, it asks with one GET of bytes [0, length) instead of a HEAD (the answer
  // names the size, ETag and metadata as a HEAD's does), and hands the bytes to `keep` (with
  // what they are of) before it returns. A cold small object costs the store one request,
  // not a HEAD and a GET. A name seen before (its metadata expired, or asked on every open
  // with --validate) is asked with a HEAD: its chunks are likely cached; so is one whose
  // first chunk would not come from the store here (`from_store`, asked then, says false:
  // the chunk is held here at some version, or another node owns it or held it before).
  // `keep` must check the length (the first chunk is min(length, size) bytes).
  struct FirstChunk {
    uint64_t length = 0;
    std::function<void(const ObjectInfo& info, std::string bytes)> keep;
    std::function<bool()> from_store;  // none: always
  };
  // Size, ETag and metadata (ObjectInfo::meta) of `url`: a write taken here, the metadata
  // cache, or the store (a HEAD, or the GET `first` asks for). kNotFound when the store has no
  // such object (remembered like an answer). Asks of the same name at once share one request
  // to the store (unless --validate: each asks).
  Result<ObjectInfo> Stat(const std::string& url, const FirstChunk* first = nullptr);
  // Forgets the cached size and ETag of `url` (it changed in the store), unless a write of it
  // taken here is pending.
  void Invalidate(const std::string& url);
  // What the store has of `url`, learned without asking it (a write through another node was
  // uploaded): cached as if fetched now, unless a write of it taken here is pending. With
  // `written_ms` (when the uploaded write was taken), a pending write taken here before that
  // yields to it too: it is older, and its upload will find the newer one in the store and
  // drop itself; readers get the newer one meanwhile. And a write known to be newer than it (by
  // `written_ms`) stays: the announcements of two uploads may arrive in either order.
  void Fresh(const std::string& url, const ObjectInfo& info, int64_t written_ms = -1);
  // The chunk version of `url` at the store's `etag`: the local version it was written as
  // here, if any, else the ETag itself.
  std::string ChunkVersion(const std::string& url, const std::string& etag);

  // A write of `url` taken here (journaled) at `written_ms`: readers get `info` (its local
  // version and its metadata) until it is durable, or a newer write is (Fresh). Unless this
  // node knows a newer write of it (taken later: pending here, or in the store as learned from
  // an upload or the store's write stamp): a write replayed after a restart or taken over from
  // a dead node may be older than what the store holds, and its upload drops it then; false.
  // `check_store` (such a write, whose node may have missed the newer one): the first Stat
  // that would answer it asks the store first (StoreNewer), and a newer write found there
  // replaces it; a store that cannot be asked leaves it (asked again next time).
  bool SetLocal(const std::string& url, const ObjectInfo& info, int64_t written_ms = 0, bool check_store = false);
  // Whether the store holds a write of `url` begun after `written_ms` (by the write stamp it
  // was uploaded with, UploadRecord::Stamp): its size, ETag and metadata if so (remembered as
  // Fresh does, replacing an older write taken here); kNotFound when it holds no such write;
  // the store's error when it cannot be asked. One HEAD.
  Result<ObjectInfo> StoreNewer(const std::string& url, int64_t written_ms);
  // Whether what the store holds of `url` is write `id` (its write stamp names it,
  // UploadRecord::Stamp): its size, ETag and metadata if so (remembered as Fresh does);
  // kNotFound when it holds another write or none; the store's error when it cannot be asked.
  // One HEAD, none when what the store said within --metadata-ttl names that write.
  Result<ObjectInfo> StoredAs(const std::string& url, const std::string& id);
  // Whether `url`'s latest write through this node is still waiting for its upload.
  bool IsLocal(const std::string& url);
  // The write of `url` as local `version` is durable in the store as `stored` (with its
  // metadata): readers get that (unless a newer write was taken meanwhile), and its chunks
  // stay readable under it.
  void SetDurable(const std::string& url, const std::string& version, const ObjectInfo& stored);
  // Chunks of `url` at the store's `etag` are cached here under local `version`: a durable
  // write's, a kept copy's, or one a reader here began before its upload.
  void AddAlias(const std::string& url, const std::string& etag, const std::string& version);
  // The write of `url` as local `version` is forgotten (deleted or handed to another node):
  // readers no longer get it from here.
  void ForgetLocal(const std::string& url, const std::string& version);
  // Aliases held, and names whose metadata or absence is remembered (for tests and metrics).
  size_t aliases();
  size_t entries();

 private:
  struct Meta {
    ObjectInfo info;
    std::chrono::steady_clock::time_point fetched;
    bool local = false;   // written here, not yet durable: trusted without a TTL
    bool absent = false;  // the store has no such object
    // When the write this is was taken (UploadRecord::created_unix_ms): a local one's, an
    // uploaded one's as its announcement or the store's write stamp says; 0 when not known.
    int64_t written_ms = 0;
    bool check_store = false;  // local: to compare with the store before it is answered (SetLocal)
  };
  // The store's answer about `key`: with `first`, one GET of its first chunk (into *bytes),
  // else (and for an empty object, whose range the store refuses) a HEAD.
  Result<ObjectInfo> AskStore(ObjectStore& store, const std::string& key, const FirstChunk* first, std::string* bytes);
  // Stat of a local write to compare with the store (Meta::check_store), `lock` (on mu_) held:
  // released while StoreNewer asks; the newer write found there, else `local` (compared, unless
  // the store could not be asked).
  Result<ObjectInfo> CheckLocal(const std::string& url, ObjectInfo local, int64_t written_ms,
                                std::unique_lock<std::mutex>* lock);
  // What Stat answers after asking the store (`info`, asked at `asked`, with `forgets` as it
  // was then), remembered unless something newer was learned or forgotten meanwhile. mu_ held.
  Result<ObjectInfo> Remember(const std::string& url, std::chrono::steady_clock::time_point asked, uint64_t forgets,
                              const Result<ObjectInfo>& info);

  const NodeOptions& options_;
  NodeMetrics* metrics_;
  const size_t max_entries_;
  static constexpr size_t kFirstSweep = 65536;
  size_t sweep_at_ = kFirstSweep;  // Bound sweeps expired names once meta_ holds this many; mu_
  std::mutex stores_mu_;
  std::map<std::string, std::shared_ptr<ObjectStore>> stores_;  // guarded by stores_mu_
  std::mutex mu_;
  std::unordered_map<std::string, Meta> meta_;  // url -> what readers get; guarded by mu_
  uint64_t forgets_ = 0;  // names erased from meta_ (a Stat that asked meanwhile keeps nothing); mu_
  // url -> the answer of the store's ask under way, for Stats of it meanwhile; guarded by mu_
  std::unordered_map<std::string, std::shared_future<Result<ObjectInfo>>> asking_;
  // url + '\n' + store ETag -> the local version its chunks were written as; guarded by mu_.
  // The newest kMaxAliases are kept: an object whose alias is gone is fetched again when read.
  static constexpr size_t kMaxAliases = 65536;
  std::unordered_map<std::string, std::string> aliases_;
  std::deque<std::string> alias_order_;  // keys of aliases_, oldest first; guarded by mu_
  void PutAlias(const std::string& key, const std::string& version);  // mu_ held
  std::string aliases_path_;   // PersistAliases' file; empty: in memory only
  int aliases_fd_ = -1;        // open to append to it; guarded by mu_
  size_t alias_lines_ = 0;     // lines in it; guarded by mu_
  // Writes the file anew with aliases_ (oldest first) and opens it to append. mu_ held.
  Status RewriteAliasesLocked();
  void Bound();                                                       // mu_ held
};

}  // namespace shoal::node
